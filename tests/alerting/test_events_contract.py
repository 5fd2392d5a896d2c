"""Error events come from the one contract reader, so spans read from a file alert the same way
as spans ended in this process."""

from __future__ import annotations

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

from tracectx import ErrorKind, new_error, traced
from tracectx.alerting import event_from_span
from tracectx.alerting.events import event_from_contract
from tracectx.contract import read_contract
from tracectx.viz.sources import loads_spans


def test_an_otlp_span_gives_the_same_event_as_the_sdk_span(spans):
    with pytest.raises(Exception), traced("POST /pay"):
        raise new_error(ErrorKind.BUSINESS, "declined", code="E_CARD", account_id="acc_1")
    [sdk_span] = spans.get_finished_spans()
    [model] = loads_spans(encode_spans([sdk_span]).SerializeToString()).spans
    from_file = event_from_contract(
        read_contract(model.attributes, [(e.name, e.attributes) for e in model.events]),
        name=model.name,
        attributes=model.attributes,
        trace_id=model.trace_id,
        span_id=model.span_id,
        end_s=model.end_ns / 1e9,
        service=model.service,
    )
    assert from_file == event_from_span(sdk_span)
    assert from_file is not None and from_file.metadata == {"account_id": "acc_1"}
