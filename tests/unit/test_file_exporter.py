"""The OTLP JSON file exporter's lines are OTLP/JSON: parsed with protobuf's official JSON
mapping (``json_format``, after the one documented OTLP/JSON deviation: hex ids) they are what
the official OTLP encoder builds from the same spans — flags, bytes, trace state, dropped counts
and non-finite doubles included."""

from __future__ import annotations

import base64
import io
import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry import trace
from opentelemetry.sdk.trace import SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, Status, StatusCode, TraceFlags
from opentelemetry.trace.span import TraceState

from tracectx.file_exporter import OTLPJsonFileExporter, spans_to_otlp

json_format = pytest.importorskip("google.protobuf.json_format")
trace_pb2 = pytest.importorskip("opentelemetry.proto.trace.v1.trace_pb2")
encoder = pytest.importorskip("opentelemetry.exporter.otlp.proto.common.trace_encoder")

ID_FIELDS = ("traceId", "spanId", "parentSpanId")


def _sdk_keeps_bytes() -> bool:
    span = TracerProvider().get_tracer("probe").start_span("probe", attributes={"b": b"\xff"})
    return span.attributes.get("b") == b"\xff"


# Older SDKs (1.38, the declared minimum, among them) turn bytes attributes into text, and the
# official encoder drops what it cannot encode: there is no byte-exact reference to compare to.
needs_bytes = pytest.mark.skipif(
    not _sdk_keeps_bytes(), reason="this SDK turns bytes attributes into text"
)


def to_protobuf_json(node):
    """OTLP/JSON -> the standard protobuf JSON mapping: hex ids become base64 (the only
    deviation OTLP/JSON makes)."""
    if isinstance(node, dict):
        return {
            k: base64.b64encode(bytes.fromhex(v)).decode()
            if k in ID_FIELDS
            else to_protobuf_json(v)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [to_protobuf_json(v) for v in node]
    return node


def parsed(spans) -> trace_pb2.TracesData:
    out = io.StringIO()
    OTLPJsonFileExporter(out).export(spans)
    (line,) = out.getvalue().splitlines()
    return json_format.Parse(json.dumps(to_protobuf_json(json.loads(line))), trace_pb2.TracesData())


def official(spans) -> trace_pb2.TracesData:
    request = encoder.encode_spans(spans)
    data = trace_pb2.TracesData(resource_spans=request.resource_spans)
    # The Python encoder leaves out the W3C trace flags (bits 0-7 of `flags`) and a link's
    # trace state; the proto defines both and the file exporter writes them.
    by_id = {(s.context.trace_id, s.context.span_id): s for s in spans}
    for rs in data.resource_spans:
        for ss in rs.scope_spans:
            for span in ss.spans:
                ours = by_id[(int.from_bytes(span.trace_id), int.from_bytes(span.span_id))]
                span.flags |= int(ours.context.trace_flags)
                for link, sdk_link in zip(span.links, ours.links, strict=True):
                    link.flags |= int(sdk_link.context.trace_flags)
                    link.trace_state = sdk_link.context.trace_state.to_header()
    return data


def make_spans(attributes: dict) -> list:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(span_limits=SpanLimits(max_attributes=8, max_events=2))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("lib", "1.2")
    remote = SpanContext(
        0x1234,
        0x5678,
        is_remote=True,
        trace_flags=TraceFlags(1),
        trace_state=TraceState([("k", "v")]),
    )
    parent = trace.set_span_in_context(NonRecordingSpan(remote))
    with tracer.start_as_current_span(
        "consume", context=parent, links=[Link(remote, {"why": "batch"})], attributes=attributes
    ) as span:
        for i in range(3):  # one more than the limit: a dropped event
            span.add_event(f"e{i}", {"payload": b"\x00\xff"})
        span.set_status(Status(StatusCode.ERROR, "it broke"))
        with tracer.start_as_current_span("child"):
            pass
    return list(exporter.get_finished_spans())


@needs_bytes
def test_round_trips_through_the_official_json_mapping():
    spans = make_spans(
        {
            **{f"extra{i}": i for i in range(4)},  # the oldest past the limit: dropped
            "raw": b"\x00\xff",  # was written as the text "b'\\x00\\xff'"
            "raws": (b"a", b"\xfe"),
            "n": 7,
            "x": 1.5,
            "ok": True,
            "tags": ("a", "b"),
        }
    )
    assert parsed(spans) == official(spans)
    consume = next(
        s for s in parsed(spans).resource_spans[0].scope_spans[0].spans if s.name == "consume"
    )
    assert consume.flags == 0x301  # sampled, parent context known to be remote
    attrs = {a.key: a.value for a in consume.attributes}
    assert attrs["raw"].bytes_value == b"\x00\xff"


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_doubles_are_json(value):
    line = json.dumps(spans_to_otlp(make_spans({"v": value})), allow_nan=False)
    data = json_format.Parse(json.dumps(to_protobuf_json(json.loads(line))), trace_pb2.TracesData())
    got = data.resource_spans[0].scope_spans[0].spans[-1].attributes[0].value.double_value
    assert (math.isnan(got) and math.isnan(value)) or got == value


@needs_bytes
@settings(max_examples=60, deadline=None)
@given(
    st.dictionaries(
        st.text(min_size=1, max_size=10),
        st.binary(max_size=40)
        | st.text(max_size=40)
        | st.integers(-(2**63), 2**63 - 1)
        | st.floats(allow_nan=False)
        | st.booleans()
        | st.lists(st.binary(max_size=8), max_size=4).map(tuple),
        max_size=6,
    )
)
def test_any_attribute_round_trips(attributes):
    spans = make_spans(attributes)
    assert parsed(spans) == official(spans)
