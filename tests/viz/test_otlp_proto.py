"""OTLP protobuf, gzip and rotel's bare [ResourceSpans] array read like OTLP JSON."""

from __future__ import annotations

import gzip
import json

import pytest
from google.protobuf.json_format import MessageToDict
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

from tracectx import ErrorKind, new_error, traced
from tracectx.viz import load_spans
from tracectx.viz.analysis import analyse
from tracectx.viz.sources import loads_spans
from tracectx.viz.sources.inflate import inflate_bytes
from tracectx.viz.sources.limits import Limits


@pytest.fixture
def request_bytes(spans) -> bytes:
    with pytest.raises(Exception), traced("checkout"), traced("charge"):
        raise new_error(ErrorKind.BUSINESS, "declined", code="E_CARD")
    return encode_spans(spans.get_finished_spans()).SerializeToString()


def _summary(data: bytes | str) -> list[tuple[str, str | None, str]]:
    [analysis] = analyse(loads_spans(data))
    [path] = analysis.errors
    return [(analysis.spans[path.origin].name, path.error_id, path.code)]


def test_protobuf_reads_like_json(request_bytes):
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    message = ExportTraceServiceRequest()
    message.ParseFromString(request_bytes)
    as_json = json.dumps(MessageToDict(message))
    assert _summary(request_bytes) == _summary(as_json)
    assert _summary(request_bytes)[0][0] == "charge"


def test_gzip_and_bare_resource_spans_array(request_bytes, tmp_path):
    from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

    doc = MessageToDict(TracesData.FromString(request_bytes))
    bare = json.dumps(doc["resourceSpans"]).encode()  # rotel's otlp_json record
    assert _summary(bare) == _summary(request_bytes)
    path = tmp_path / "spans.pb.gz"
    path.write_bytes(gzip.compress(request_bytes))
    loaded = load_spans(path)
    assert len(loaded.spans) == 2 and not loaded.problems


def test_broken_protobuf_and_gzip_are_problems_not_errors():
    assert loads_spans(b"\x0a\xff\xff\xff").problems
    assert loads_spans(b"\x1f\x8b garbage").problems
    limits = Limits(max_inflated=1_000, max_ratio=1000, max_document=1_000)
    kept, problem, over_limit = inflate_bytes(gzip.compress(b"x" * 10_000), limits)
    assert kept == b"x" * 1_000 and over_limit
    assert problem is not None and "inflates to more than 1000 bytes" in problem


def test_protobuf_spans_and_events_are_masked_as_the_model_masks_them():
    """`spans_from_message` builds spans with `Span.fast`: the same spans `Span(...)` gives,
    raw secrets in bound metadata masked on spans and events alike."""
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue, KeyValueList
    from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, Span, TracesData

    from tracectx.viz.model import Span as ModelSpan
    from tracectx.viz.model import SpanEvent
    from tracectx.viz.sources.otlp_proto import parse_otlp_proto

    def kv(key: str, value: AnyValue) -> KeyValue:
        return KeyValue(key=key, value=value)

    attrs = [
        kv("tracectx.error.id", AnyValue(string_value="e1")),
        kv("tracectx.error.meta.password", AnyValue(string_value="hunter2-raw")),
        kv("tracectx.error.meta.order", AnyValue(int_value=7)),
        kv(
            "tracectx.error.meta.details",
            AnyValue(kvlist_value=KeyValueList(values=[kv("token", AnyValue(string_value="t"))])),
        ),
    ]
    raw = Span(
        trace_id=b"\x01" * 16,
        span_id=b"\x02" * 8,
        name="charge",
        attributes=attrs,
        events=[Span.Event(name="exception", time_unix_nano=5, attributes=attrs)],
    )
    data = TracesData(resource_spans=[ResourceSpans(scope_spans=[{"spans": [raw]}])])
    [span] = parse_otlp_proto(data.SerializeToString()).spans
    masked = {
        "tracectx.error.id": "e1",
        "tracectx.error.meta.password": "[REDACTED]",
        "tracectx.error.meta.order": 7,
        "tracectx.error.meta.details": {"token": "[REDACTED]"},
    }
    assert span.attributes == span.events[0].attributes == masked
    unmasked = {**masked, "tracectx.error.meta.password": "hunter2-raw"}
    unmasked["tracectx.error.meta.details"] = {"token": "t"}
    event = SpanEvent("exception", dict(unmasked), 5)
    plain = ModelSpan(
        "01" * 16, "02" * 8, None, "charge", "unknown", 0, 0, attributes=unmasked, events=[event]
    )
    assert span == plain
    assert "hunter2-raw" not in repr(span)
