"""The OTLP protobuf reader (shared by the stream and the visualiser), with its fast paths,
gives exactly what a plain field-by-field reading of the message gives."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, Span, Status, TracesData

from tracectx.viz.model import Link, SpanEvent, SpanSet
from tracectx.viz.model import Span as ModelSpan
from tracectx.viz.sources.fields import MAX_TIME_NS
from tracectx.viz.sources.otlp_proto import _value, parse_otlp_proto
from tracectx_stream.decode import decode_record


def _hex(raw: bytes, size: int) -> str | None:
    return raw.hex() if len(raw) == size and any(raw) else None


def _attrs(items: Any) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in items}


def plain_reading(data: bytes) -> SpanSet:
    """The reference: every field read the plain way, no fast path."""
    message = TracesData.FromString(data)
    out = SpanSet()
    kinds = ("internal", "internal", "server", "client", "producer", "consumer")
    for rs in message.resource_spans:
        service = str(_attrs(rs.resource.attributes).get("service.name") or "unknown")
        for ss in rs.scope_spans:
            for raw in ss.spans:
                trace_id, span_id = _hex(raw.trace_id, 16), _hex(raw.span_id, 8)
                if trace_id is None or span_id is None:
                    out.problems.append(f"span {raw.name[:80]!r}: bad trace or span id, skipped")
                    continue
                out.spans.append(
                    ModelSpan(
                        trace_id=trace_id,
                        span_id=span_id,
                        parent_id=_hex(raw.parent_span_id, 8),
                        name=raw.name,
                        service=service,
                        start_ns=min(raw.start_time_unix_nano, MAX_TIME_NS),
                        end_ns=min(raw.end_time_unix_nano, MAX_TIME_NS),
                        error=raw.status.code == 2,
                        status_message=raw.status.message,
                        kind=kinds[raw.kind] if 0 <= raw.kind < len(kinds) else "internal",
                        attributes=_attrs(raw.attributes),
                        events=[
                            SpanEvent(
                                e.name,
                                _attrs(e.attributes),
                                min(e.time_unix_nano, MAX_TIME_NS) or None,
                            )
                            for e in raw.events
                        ],
                        links=[
                            Link(t, sp)
                            for ln in raw.links
                            if (t := _hex(ln.trace_id, 16)) and (sp := _hex(ln.span_id, 8))
                        ],
                    )
                )
    return out


ids16 = st.sampled_from([b"", bytes(16), b"\x01" * 15, b"\x00" * 15 + b"\x07"]) | st.binary(
    min_size=16, max_size=16
)
ids8 = st.sampled_from([b"", bytes(8), b"\x01" * 9, b"\x00" * 7 + b"\x07"]) | st.binary(
    min_size=8, max_size=8
)
times = st.sampled_from([0, 1, 2**63 - 1, 2**63, 2**64 - 1]) | st.integers(0, 2**64 - 1)
keys = st.sampled_from(
    ["service.name", "http.response.status_code", "tracectx.error.id", "tracectx.error.meta.x"]
) | st.text(max_size=8)


def any_values(depth: int = 0) -> st.SearchStrategy[AnyValue]:
    simple = st.one_of(
        st.just(AnyValue()),
        st.text(max_size=10).map(lambda v: AnyValue(string_value=v)),
        st.integers(-(2**63), 2**63 - 1).map(lambda v: AnyValue(int_value=v)),
        st.booleans().map(lambda v: AnyValue(bool_value=v)),
        st.floats(allow_nan=False).map(lambda v: AnyValue(double_value=v)),
        st.binary(max_size=6).map(lambda v: AnyValue(bytes_value=v)),
    )
    if depth >= 10:
        return simple
    nested = st.deferred(lambda: any_values(depth + 1))
    return st.one_of(
        simple,
        st.lists(nested, max_size=2).map(
            lambda vs: AnyValue(array_value={"values": vs})  # type: ignore[arg-type]
        ),
        st.lists(st.tuples(keys, nested), max_size=2).map(
            lambda kvs: AnyValue(
                kvlist_value={"values": [KeyValue(key=k, value=v) for k, v in kvs]}  # type: ignore[arg-type]
            )
        ),
    )


attributes = st.lists(
    st.builds(lambda k, v: KeyValue(key=k, value=v), keys, any_values()), max_size=4
)


@st.composite
def spans(draw: Any) -> Span:
    return Span(
        trace_id=draw(ids16),
        span_id=draw(ids8),
        parent_span_id=draw(ids8),
        name=draw(st.text(max_size=8)),
        kind=draw(st.integers(0, 7)),
        start_time_unix_nano=draw(times),
        end_time_unix_nano=draw(times),
        attributes=draw(attributes),
        events=draw(
            st.lists(
                st.builds(
                    lambda n, t, a: Span.Event(name=n, time_unix_nano=t, attributes=a),
                    st.sampled_from(["exception", "tracectx.error.handled", ""]),
                    times,
                    attributes,
                ),
                max_size=2,
            )
        ),
        links=draw(
            st.lists(
                st.builds(lambda t, s: Span.Link(trace_id=t, span_id=s), ids16, ids8), max_size=2
            )
        ),
        status=Status(code=draw(st.integers(0, 2)), message=draw(st.text(max_size=6))),
    )


traces = st.lists(
    st.builds(
        lambda res, ss: ResourceSpans(
            resource={"attributes": res},  # type: ignore[arg-type]
            scope_spans=[{"spans": ss}],  # type: ignore[list-item]
        ),
        attributes,
        st.lists(spans(), max_size=4),
    ),
    min_size=1,  # an empty record is the caller's case, before any reader
    max_size=3,
).map(lambda rs: TracesData(resource_spans=rs).SerializeToString())


@settings(max_examples=150, deadline=None)
@given(traces)
def test_proto_records_read_as_a_plain_reading_reads_them(data: bytes) -> None:
    assert parse_otlp_proto(data) == plain_reading(data)
    assert decode_record(data, "otlp_proto") == parse_otlp_proto(data)


def test_bad_records_are_problems_as_in_the_visualiser() -> None:
    for data in (b"\x0a\xff", b"not protobuf at all", TracesData().SerializeToString() + b"\x00"):
        assert decode_record(data, "otlp_proto") == parse_otlp_proto(data)
