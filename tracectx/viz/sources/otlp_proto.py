"""OTLP protobuf (`TracesData` or `ExportTraceServiceRequest` bytes) and gzip input.

The OTel Collector's and rotel's Kafka and file exporters write ``otlp_proto``: the binary
encoding of ``ExportTraceServiceRequest``, which is the same on the wire as ``TracesData``
(field 1, repeated ``ResourceSpans``). It is parsed with `opentelemetry-proto` and read straight
from the message objects into the span model — the typed fields need none of the JSON reader's
type checks, and going through a JSON-shaped dict cost 150x the parse (the span stream reads
this on every record). Gzip input is inflated by `inflate` within limits first. A message upb
refuses (a part nested past its depth limit) is read by `proto_salvage`, keeping every other
span.
"""

from __future__ import annotations

from typing import Any

from tracectx.viz.model import Link, Span, SpanEvent, SpanSet
from tracectx.viz.sources.fields import MAX_TIME_NS, MAX_VALUE_DEPTH, TOO_DEEP
from tracectx.viz.sources.limits import charge
from tracectx.viz.sources.proto_salvage import salvage

__all__ = [
    "looks_like_proto",
    "parse_otlp_proto",
    "spans_from_message",
]


def looks_like_proto(data: bytes) -> bool:
    """True if `data` starts like an encoded ``TracesData``: field 1, wire type 2 (0x0a)."""
    return data[:1] == b"\x0a"


_KINDS = ("internal", "internal", "server", "client", "producer", "consumer")
_KIND_NAMES = dict(enumerate(_KINDS))  # any other number (the enum is open) reads "internal"
_ERROR = 2  # Status.STATUS_CODE_ERROR


def _value(value: Any, depth: int = 0) -> Any:
    """An ``AnyValue`` message as a plain value; arrays and kvlists at most `MAX_VALUE_DEPTH`."""
    which = value.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        if depth >= MAX_VALUE_DEPTH:
            return TOO_DEEP
        return [_value(v, depth + 1) for v in value.array_value.values]
    if which == "kvlist_value":
        if depth >= MAX_VALUE_DEPTH:
            return TOO_DEEP
        return {kv.key: _value(kv.value, depth + 1) for kv in value.kvlist_value.values}
    if which == "bytes_value":
        return value.bytes_value.hex()
    return getattr(value, which)


def _attributes(items: Any) -> dict[str, Any]:
    """``KeyValue`` messages (a list: a slice of the repeated field) as a dict, as `_value`
    reads each value. A non-empty ``string_value`` can only be the oneof's set member, so the
    commonest type costs one read and no ``WhichOneof``: this runs per attribute."""
    out: dict[str, Any] = {}
    if len(items) > 64:  # the usual few are not worth a budget check
        charge(len(items))
    for kv in items:
        value = kv.value
        text = value.string_value
        if text:
            out[kv.key] = text
        elif value.WhichOneof("value") == "int_value":
            out[kv.key] = value.int_value
        else:
            out[kv.key] = _value(value)
    return out


def _service(items: Any) -> str:
    """The resource's ``service.name`` (the last one, as a dict of the attributes keeps)."""
    found = None
    for kv in items:
        if kv.key == "service.name":
            found = kv
    return str((found is not None and _value(found.value)) or "unknown")


_NO_TRACE, _NO_SPAN = bytes(16), bytes(8)


def _id(raw: bytes, empty: bytes) -> str | None:
    """`raw` as hex when it has `empty`'s length and is not all zeros, else None."""
    return raw.hex() if len(raw) == len(empty) and raw != empty else None


def spans_from_message(message: Any) -> SpanSet:
    """The spans of a parsed ``TracesData`` (or ``ExportTraceServiceRequest``) message.

    The span stream runs this on every span it reads, so the per-span work is kept small: ids
    and times are checked inline and each id is turned to hex once (a trace id once per
    message), repeated fields are read as slices (a list built in C; iterating the container
    itself ends each loop with a formatted ``IndexError``), empty attribute/event/link lists are
    not walked, only ``service.name`` is read from the resource, and spans and events are built
    with `Span.fast` / `SpanEvent.fast` (the values are typed by the message: no dataclass
    ``__init__`` needed) and positional arguments (keywords would cost a dict per span)."""
    out = SpanSet()
    append = out.spans.append
    new_span, new_event = Span.fast, SpanEvent.fast
    trace_ids: dict[bytes, str | None] = {}  # raw trace id -> hex, or None when invalid
    for resource_spans in message.resource_spans[:]:
        service = _service(resource_spans.resource.attributes[:])
        for scope_spans in resource_spans.scope_spans[:]:
            raws = scope_spans.spans[:]
            charge(len(raws))
            for raw in raws:
                raw_trace = raw.trace_id
                trace_id = trace_ids.get(raw_trace, _UNSEEN)
                if trace_id is _UNSEEN:
                    trace_id = trace_ids[raw_trace] = _id(raw_trace, _NO_TRACE)
                span_id = raw.span_id
                if trace_id is None or len(span_id) != 8 or span_id == _NO_SPAN:
                    out.problems.append(f"span {raw.name[:80]!r}: bad trace or span id, skipped")
                    continue
                parent_id, status = raw.parent_span_id, raw.status
                start, end = raw.start_time_unix_nano, raw.end_time_unix_nano
                attributes, events, links = raw.attributes, raw.events, raw.links
                append(
                    new_span(
                        trace_id,
                        span_id.hex(),
                        parent_id.hex()
                        if len(parent_id) == 8 and parent_id != _NO_SPAN
                        else None,  # `_id`, inline
                        raw.name,
                        service,
                        start if start < MAX_TIME_NS else MAX_TIME_NS,
                        end if end < MAX_TIME_NS else MAX_TIME_NS,
                        status.code == _ERROR,
                        status.message,
                        _KIND_NAMES.get(raw.kind, "internal"),
                        _attributes(attributes[:]) if attributes else {},
                        [
                            new_event(
                                e.name,
                                _attributes(e.attributes[:]),
                                min(e.time_unix_nano, MAX_TIME_NS) or None,
                            )
                            for e in events[:]
                        ]
                        if events
                        else [],
                        [
                            Link(t, sp)
                            for ln in links[:]
                            if (t := _id(ln.trace_id, _NO_TRACE))
                            and (sp := _id(ln.span_id, _NO_SPAN))
                        ]
                        if links
                        else [],
                    )
                )
    return out


_UNSEEN: Any = object()


def parse_otlp_proto(data: bytes) -> SpanSet:
    """Spans of an encoded ``TracesData``/``ExportTraceServiceRequest``; problems, never raises."""
    try:
        from google.protobuf.message import DecodeError
        from opentelemetry.proto.trace.v1.trace_pb2 import TracesData
    except ImportError as exc:
        return SpanSet(problems=[f"OTLP protobuf input needs opentelemetry-proto ({exc.name})"])
    message = TracesData()
    problems: list[str] = []
    try:
        message.ParseFromString(data)
    except (DecodeError, RecursionError, ValueError) as exc:
        salvaged, problems = salvage(TracesData, data, _value)
        if salvaged is None or not salvaged.resource_spans:
            return SpanSet(problems=[f"not OTLP protobuf (TracesData): {str(exc)[:200]}"])
        message = salvaged
    if not message.resource_spans:
        return SpanSet(problems=["OTLP protobuf input holds no resource spans"])
    out = spans_from_message(message)
    out.problems[:0] = problems
    return out
