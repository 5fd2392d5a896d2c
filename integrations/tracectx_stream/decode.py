"""Span-topic records to spans: OTLP protobuf (the Collector's and Jaeger v2's default), OTLP
JSON (a ``{"resourceSpans": …}`` document, or rotel's bare ``[ResourceSpans]`` array), and the
re-keyed batches tracectx writes itself. A record that cannot be read is a poison record: the
caller counts and skips it; nothing here raises on any input. OTLP protobuf is read by the
visualiser's `parse_otlp_proto`, the one protobuf reader.

Every record is hostile (any client of the cluster may write to any topic), so each is decoded
within `RECORD_LIMITS`: gzip inflated at most 64 MiB and 100 times its size, at most 1M items
(lines, entries, spans) and 5 CPU-seconds of work. A record over a limit is refused whole, as a
poison record whose problem says which limit.

Re-keyed batches (`encode_trace_batch`) are format v2: the span model as columns (one array
per field) in msgpack (msgspec; unlike JSON it keeps every float, inf and nan included), read
back through a typed schema that checks every value in C (ids are hex of their length, times
in range, attribute values plain data at most `MAX_VALUE_DEPTH` deep); v1 (JSON, a list of span
objects) is still read, through a typed schema too, so a group keeps working while its
instances are upgraded one by one.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from operator import attrgetter
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta, Struct

from tracectx.viz.model import Link, Span, SpanEvent, SpanSet, redact_meta
from tracectx.viz.sources import RECORD_LIMITS, Limits, loads_spans
from tracectx.viz.sources.fields import MAX_TIME_NS, MAX_VALUE_DEPTH, plain_value
from tracectx.viz.sources.limits import budgeted
from tracectx.viz.sources.otlp_proto import parse_otlp_proto

__all__ = [
    "BATCH_VERSION",
    "FORMATS",
    "MAX_BATCH_SPANS",
    "MAX_RECORD_BYTES",
    "decode_record",
    "decode_trace_batch",
    "encode_trace_batch",
]

log = logging.getLogger(__name__)

FORMATS = ("otlp_proto", "otlp_json", "auto")
BATCH_VERSION = 2
MAX_RECORD_BYTES = 64 * 1024 * 1024
#: Spans in one re-keyed batch at most: the assembler caps a trace far below this.
MAX_BATCH_SPANS = 1_000_000


def _guarded(what: str, value: bytes | None, decode: Any) -> SpanSet:
    """`decode()`, or a poison problem if it raised: the last guard of a hostile boundary (the
    property tests assert it is never reached)."""
    try:
        result: SpanSet = decode()
    except Exception as exc:  # one record must never stop a stage
        log.exception("tracectx stream: %s of %d bytes raised", what, len(value or b""))
        return SpanSet(problems=[f"unreadable {what} ({type(exc).__name__})"])
    return result


def decode_record(
    value: bytes | None, fmt: str = "auto", *, limits: Limits = RECORD_LIMITS
) -> SpanSet:
    """The spans in one record's value; a poison record (unreadable, or over `limits`) gives
    no spans and a problem."""
    if not value:
        return SpanSet(problems=["empty record"])
    if len(value) > MAX_RECORD_BYTES:
        return SpanSet(problems=[f"record of {len(value)} bytes is over {MAX_RECORD_BYTES}"])

    def decode() -> SpanSet:
        out = None
        with budgeted(limits) as budget:
            if fmt == "otlp_proto":
                out = parse_otlp_proto(value)
            else:  # sniffs JSON (rotel's bare array too), protobuf, gzip
                out = loads_spans(value, limits=limits)
        if budget.refused is not None or out is None:
            return SpanSet(problems=[f"record refused: {budget.refused}"])
        return out

    return _guarded("record", value, decode)


# --- re-keyed batches --------------------------------------------------------------------

_Hex32 = Annotated[str, Meta(pattern="^[0-9a-f]{32}$")]
_Hex16 = Annotated[str, Meta(pattern="^[0-9a-f]{16}$")]
_Time = Annotated[int, Meta(ge=0, le=MAX_TIME_NS)]
_HEX_DIGITS = b"0123456789abcdef"
_Flags = Annotated[int, Meta(ge=0, lt=2**32)]


def _bounded_value_type(depth: int) -> Any:
    """Plain JSON with at most `depth` levels of arrays/objects, as a type msgspec checks."""
    scalar: Any = str | int | float | bool | None
    value = scalar
    for _ in range(depth):
        value = scalar | list[value] | dict[str, value]  # type: ignore[valid-type]
    return value


_Value = _bounded_value_type(MAX_VALUE_DEPTH)
_Attributes = dict[str, _Value]  # type: ignore[valid-type]


class _Event(Struct, array_like=True, forbid_unknown_fields=True, gc=False):
    name: str
    time_ns: _Time | None
    attributes: _Attributes
    attribute_types: dict[str, str] | None = None


class _Link(Struct, array_like=True, forbid_unknown_fields=True, gc=False):
    trace_id: _Hex32
    span_id: _Hex16
    ref_type: str | None = None


class _BatchV2(Struct, forbid_unknown_fields=True, gc=False):
    """v2: one array per span field (``i``-th entries are the ``i``-th span's). The optional
    columns are left out when no span has the field."""

    v: Literal[2]
    trace_id: list[str]  # hex: checked a column at a time (`_hex_column`), not by a pattern
    span_id: list[str]
    parent_id: list[str | None]
    name: list[str]
    service: list[str]
    start_ns: list[_Time]
    end_ns: list[_Time]
    error: list[bool]
    status_message: list[str]
    kind: list[str]
    attributes: list[_Attributes]
    events: list[list[_Event]]
    links: list[list[_Link]]
    resource_attributes: list[_Attributes | None] | None = None
    attribute_types: list[dict[str, str] | None] | None = None
    resource_attribute_types: list[dict[str, str] | None] | None = None
    warnings: list[list[str] | None] | None = None
    flags: list[_Flags | None] | None = None


class _EventV1(Struct, forbid_unknown_fields=True, gc=False):
    name: str
    attributes: _Attributes
    time_ns: _Time | None = None
    attribute_types: dict[str, str] | None = None


class _LinkV1(Struct, forbid_unknown_fields=True, gc=False):
    trace_id: _Hex32
    span_id: _Hex16
    ref_type: str | None = None


class _SpanV1(Struct, forbid_unknown_fields=True, gc=False):
    trace_id: _Hex32
    span_id: _Hex16
    parent_id: _Hex16 | None
    name: str
    service: str
    start_ns: _Time
    end_ns: _Time
    error: bool = False
    status_message: str = ""
    kind: str = "internal"
    attributes: _Attributes = {}
    events: list[_EventV1] = []
    links: list[_LinkV1] = []
    resource_attributes: _Attributes | None = None
    attribute_types: dict[str, str] | None = None
    resource_attribute_types: dict[str, str] | None = None
    warnings: list[str] | None = None
    flags: _Flags | None = None


class _BatchV1(Struct, forbid_unknown_fields=True, gc=False):
    v: Literal[1]
    spans: list[_SpanV1]


_V2 = msgspec.msgpack.Decoder(_BatchV2)
_ENCODER = msgspec.msgpack.Encoder()
_COLUMNS = (
    "trace_id",
    "span_id",
    "parent_id",
    "name",
    "service",
    "start_ns",
    "end_ns",
    "error",
    "status_message",
    "kind",
    "attributes",
)
_OPTIONAL = (
    "resource_attributes",
    "attribute_types",
    "resource_attribute_types",
    "warnings",
    "flags",
)
_RESOURCE = "resource_attributes"
_GETTERS = {name: attrgetter(name) for name in _COLUMNS + _OPTIONAL}


def _event_row(event: SpanEvent) -> tuple[Any, ...]:
    if event.attribute_types:
        return (event.name, event.time_ns, event.attributes, event.attribute_types)
    return (event.name, event.time_ns, event.attributes)


def _link_row(link: Link) -> tuple[Any, ...]:
    return (
        (link.trace_id, link.span_id)
        if link.ref_type is None
        else (
            link.trace_id,
            link.span_id,
            link.ref_type,
        )
    )


def _columns(spans: list[Span]) -> dict[str, Any]:
    doc: dict[str, Any] = {"v": BATCH_VERSION}
    for name in _COLUMNS:
        doc[name] = list(map(_GETTERS[name], spans))
    doc["events"] = [[_event_row(e) for e in s.events] if s.events else [] for s in spans]
    doc["links"] = [[_link_row(ln) for ln in s.links] if s.links else [] for s in spans]
    for name in _OPTIONAL:
        column = list(map(_GETTERS[name], spans))
        if any(item is not None for item in column):
            doc[name] = column
    return doc


def _plain(doc: dict[str, Any]) -> dict[str, Any]:
    """`doc` as msgpack can encode it and `decode_trace_batch` accepts it: attribute values
    cut at `MAX_VALUE_DEPTH` (`plain_value`, as the readers cut them), then ints past 64 bits
    and other types as text, lone surrogates replaced (`_scrub`). Only for spans the fast
    encoding refused: spans built by hand, as the readers never make such values."""
    for name in ("attributes", "resource_attributes"):
        if doc.get(name) is not None:
            doc[name] = [plain_value(a) if a is not None else None for a in doc[name]]
    doc["events"] = [
        [(row[0], row[1], plain_value(row[2]), *row[3:]) for row in events]
        for events in doc["events"]
    ]
    scrubbed: dict[str, Any] = _scrub(doc)
    return scrubbed


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    if value is None or isinstance(value, bool | float):
        return value
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**64 else str(value)
    if isinstance(value, dict):
        return {_scrub(str(k)): _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    return _scrub(str(value)[:1000])


def encode_trace_batch(spans: Iterable[Span]) -> bytes:
    """Spans of one trace as tracectx's own re-keyed record (format v2: columns, msgpack)."""
    doc = _columns(list(spans))
    try:
        encoded: bytes = _ENCODER.encode(doc)
    except (TypeError, ValueError, OverflowError, RecursionError):
        encoded = _ENCODER.encode(_plain(doc))
    return encoded


def _events_v2(rows: list[_Event]) -> list[SpanEvent]:
    out = []
    for row in rows:
        event = SpanEvent.fast(row.name, row.attributes, row.time_ns)
        event.attribute_types = row.attribute_types
        out.append(event)
    return out


def _hex_column(ids: list[str], length: int) -> bool:
    """True when every id (a str: the schema says so) is `length` lowercase hex digits, checked
    for the whole column in C: a pattern per id cost more than the rest of the id's decoding."""
    if not ids:
        return True
    joined = "".join(ids)
    return (
        set(map(len, ids)) == {length}
        and joined.isascii()
        and not joined.encode().translate(None, _HEX_DIGITS)
    )


def _from_v2(batch: _BatchV2) -> SpanSet:
    n = len(batch.trace_id)
    columns = [getattr(batch, name) for name in (*_COLUMNS, "events", "links")]
    optional = {name: getattr(batch, name) for name in _OPTIONAL}
    if any(len(c) != n for c in columns) or any(
        c is not None and len(c) != n for c in optional.values()
    ):
        return SpanSet(problems=["unreadable span batch: columns of different lengths"])
    if n > MAX_BATCH_SPANS:
        return SpanSet(problems=[f"unreadable span batch: over {MAX_BATCH_SPANS} spans"])
    if not (
        _hex_column(batch.trace_id, 32)
        and _hex_column(batch.span_id, 16)
        and _hex_column([p for p in batch.parent_id if p is not None], 16)
    ):
        return SpanSet(problems=["unreadable span batch: an id that is not lowercase hex"])
    new_span, new_link = Span.fast, Link
    rows = zip(*columns, strict=True)
    spans = [
        new_span(
            t,
            s,
            p,
            name,
            service,
            start,
            end,
            error,
            message,
            kind,
            attrs,
            _events_v2(events) if events else [],
            [new_link(ln.trace_id, ln.span_id, ln.ref_type) for ln in links] if links else [],
        )
        for t, s, p, name, service, start, end, error, message, kind, attrs, events, links in rows
    ]
    for name, column in optional.items():
        if column is not None:
            for span, item in zip(spans, column, strict=True):
                if item is not None:  # resource attributes masked as the dataclass masks them
                    setattr(span, name, redact_meta(item) if name == _RESOURCE else item)
    return SpanSet(spans)


def _from_v1(batch: _BatchV1) -> SpanSet:
    if len(batch.spans) > MAX_BATCH_SPANS:
        return SpanSet(problems=[f"unreadable span batch: over {MAX_BATCH_SPANS} spans"])
    spans = [
        Span(
            trace_id=s.trace_id,
            span_id=s.span_id,
            parent_id=s.parent_id,
            name=s.name,
            service=s.service,
            start_ns=s.start_ns,
            end_ns=s.end_ns,
            error=s.error,
            status_message=s.status_message,
            kind=s.kind,
            attributes=dict(s.attributes),
            events=[
                SpanEvent(e.name, dict(e.attributes), e.time_ns, e.attribute_types)
                for e in s.events
            ],
            links=[Link(ln.trace_id, ln.span_id, ln.ref_type) for ln in s.links],
            resource_attributes=s.resource_attributes,
            attribute_types=s.attribute_types,
            resource_attribute_types=s.resource_attribute_types,
            warnings=s.warnings,
            flags=s.flags,
        )
        for s in batch.spans
    ]
    return SpanSet(spans)


def decode_trace_batch(value: bytes | None) -> SpanSet:
    """Read back `encode_trace_batch` (v2, or v1 of earlier versions); a record that is not
    one, or not exactly one, is a problem (a poison record), never an error."""

    def decode() -> SpanSet:
        if not value:
            return SpanSet(problems=["unreadable span batch: empty record"])
        if len(value) > MAX_RECORD_BYTES:
            return SpanSet(problems=[f"unreadable span batch: over {MAX_RECORD_BYTES} bytes"])
        try:  # v1 was JSON (an object: "{"), v2 is msgpack (a map: never that byte)
            if value[:1] == b"{":  # stdlib json: v1 was written by json.dumps (Infinity too)
                return _from_v1(msgspec.convert(json.loads(value), _BatchV1))
            return _from_v2(_V2.decode(value))
        except (msgspec.DecodeError, RecursionError, ValueError) as exc:
            return SpanSet(problems=[f"unreadable span batch: {str(exc)[:200]}"])

    return _guarded("span batch", value, decode)
