"""The fast path for OTLP JSON: msgspec decodes a ``{"resourceSpans": [...]}`` document straight
into typed records, never building the generic dict tree (which was 3-5x the input in memory).

It is an accelerator, never a second opinion: whenever a document is not exactly the well-formed
shape (a field of an unexpected type, an unknown key in an ``AnyValue``, a bad id, any other
thing the tolerant reader would list as a problem) `decode_otlp` returns None and the caller
reads that document with the tolerant reader (`otlp_json.parse_otlp`), so problems are listed
exactly as before. Where it returns spans they equal the tolerant reader's (a property test
checks this). Needs msgspec (the viz extra); without it `decode_otlp` always returns None.
"""

from __future__ import annotations

import re
import sys
from operator import attrgetter
from typing import Any

from tracectx.viz.model import Link, Span, SpanEvent, SpanSet
from tracectx.viz.sources.fields import (
    SOURCE_SPAN_ID,
    SOURCE_TRACE_ID,
    ProblemList,
    parse_id,
    plain_value,
    text,
    time_value,
)
from tracectx.viz.sources.limits import charge
from tracectx.viz.sources.otlp_json import KINDS as _KINDS
from tracectx.viz.sources.otlp_json import any_value, kind_name

__all__ = ["AVAILABLE", "decode_otlp", "decode_trace_ids"]

try:
    import msgspec
    from msgspec import UNSET, Struct
except ImportError:  # pragma: no cover - core install without the viz extra
    AVAILABLE = False
else:
    AVAILABLE = True

_HEX32 = re.compile(r"[0-9a-f]{32}")
_HEX16 = re.compile(r"[0-9a-f]{16}")
_HEX_DIGITS = b"0123456789abcdef"
_ZERO32, _ZERO16 = "0" * 32, "0" * 16
_MAX_TIME = 2**63 - 1
_TRACE_ID = attrgetter("traceId")
_SPAN_ID = attrgetter("spanId")
_PARENT_ID = attrgetter("parentSpanId")
_START = attrgetter("startTimeUnixNano")
_END = attrgetter("endTimeUnixNano")
# Attribute keys already interned: one dict lookup a key instead of a `sys.intern` call (whose
# argument parsing cost more than the lookup). Bounded: a hostile file's many keys stay out.
_KEYS: dict[str, str] = {}
_MAX_KEYS, _MAX_KEY_LENGTH = 4096, 128
_INT_LIST: Any = msgspec.json.Decoder(list[int]) if AVAILABLE else None

if AVAILABLE:
    # Field names are OTLP's JSON names. `Any` leaves decode to plain values that the tolerant
    # reader's own helpers then judge, so both readers agree on every value. gc=False: decoded
    # JSON has no cycles, and untracked records spare the collector a walk over each batch.

    class _Value(Struct, forbid_unknown_fields=True, gc=False):
        stringValue: Any = UNSET
        boolValue: Any = UNSET
        intValue: Any = UNSET
        doubleValue: Any = UNSET
        bytesValue: Any = UNSET
        arrayValue: Any = UNSET
        kvlistValue: Any = UNSET

    class _KeyValue(Struct, gc=False):
        key: str
        value: _Value | None = None

    class _Status(Struct, gc=False):
        code: Any = None
        message: Any = None

    class _Event(Struct, gc=False):
        name: Any = None
        timeUnixNano: Any = None
        attributes: list[_KeyValue] | None = None

    class _Link(Struct, gc=False):
        traceId: Any = None
        spanId: Any = None

    class _Span(Struct, gc=False):
        traceId: Any = None
        spanId: Any = None
        parentSpanId: Any = None
        name: Any = None
        kind: Any = None
        startTimeUnixNano: Any = None
        endTimeUnixNano: Any = None
        attributes: list[_KeyValue] | None = None
        events: list[_Event] | None = None
        links: list[_Link] | None = None
        status: _Status | None = None

    class _Scope(Struct, gc=False):
        spans: list[_Span] | None = None

    class _Resource(Struct, gc=False):
        attributes: list[_KeyValue] | None = None

    class _ResourceSpans(Struct, gc=False):
        resource: _Resource | None = None
        scopeSpans: list[_Scope] | None = None
        instrumentationLibrarySpans: list[_Scope] | None = None

    class _Document(Struct, forbid_unknown_fields=True, gc=False):
        resourceSpans: list[_ResourceSpans]

    # Only the ids, for counting a file's spans per trace (the other fields are skipped).
    class _IdSpan(Struct, gc=False):
        traceId: Any = None
        spanId: Any = None

    class _IdScope(Struct, gc=False):
        spans: list[_IdSpan] | None = None

    class _IdResourceSpans(Struct, gc=False):
        scopeSpans: list[_IdScope] | None = None
        instrumentationLibrarySpans: list[_IdScope] | None = None

    class _IdDocument(Struct, gc=False):
        resourceSpans: list[_IdResourceSpans] | None = None

    _DECODER = msgspec.json.Decoder(_Document)
    _ID_DECODER = msgspec.json.Decoder(_IdDocument)


class _Unusual(Exception):
    """Something the tolerant reader would report: read this document with it instead."""


def _value(value: Any, sink: list[str]) -> Any:
    """An ``AnyValue`` as `otlp_json.any_value` reads it (same keys, same order of precedence)."""
    if value is None:
        return None
    if value.stringValue is not UNSET:
        raw = value.stringValue
        return raw if raw.__class__ is str else plain_value(raw, 0, sink)
    for raw in (value.boolValue, value.doubleValue, value.bytesValue):
        if raw is not UNSET:
            return plain_value(raw, 0, sink)
    if value.intValue is not UNSET:
        raw = value.intValue
        if raw.__class__ is str and len(raw) <= 24:  # as any_value: int() else the text
            try:
                return int(raw)
            except ValueError:
                return raw
        return any_value({"intValue": raw}, 0, sink)
    if value.arrayValue is not UNSET:
        return any_value({"arrayValue": value.arrayValue}, 0, sink)
    if value.kvlistValue is not UNSET:
        return any_value({"kvlistValue": value.kvlistValue}, 0, sink)
    return None


def _attributes(items: list[Any] | None, sink: list[str]) -> dict[str, Any]:
    if not items:
        return {}
    intern = sys.intern  # the same few keys on every span: one string each, not one per span
    out: dict[str, Any] = {}
    if len(items) > 64:  # the usual few are not worth a budget check
        charge(len(items))
    for kv in items:
        value = kv.value
        if value is not None and value.stringValue.__class__ is str:
            out[intern(kv.key)] = value.stringValue
        else:
            out[intern(kv.key)] = _value(value, sink)
    return out


def _new_key(key: str) -> str:
    """`key` interned, and remembered in `_KEYS` while that has room."""
    key = sys.intern(key)
    if len(key) <= _MAX_KEY_LENGTH and len(_KEYS) < _MAX_KEYS:
        _KEYS[key] = key
    return key


def _slow_id(raw: Any, length: int) -> tuple[str, str | None]:
    parsed = parse_id(raw, length)
    if parsed is None:
        raise _Unusual
    return parsed


def _slow_time(raw: Any, what: str) -> int:
    sink: list[str] = []
    number = time_value(raw, what, sink)
    if sink:
        raise _Unusual
    return number


def _event(raw: Any, sink: list[str]) -> SpanEvent:
    name = raw.name if raw.name.__class__ is str else text(raw.name, "event name", sink)
    when = raw.timeUnixNano
    return SpanEvent.fast(
        name,
        _attributes(raw.attributes, sink),
        None if when is None or when == "" else (_slow_time(when, "event time") or None),
    )


def _span(raw: Any, service: str, sink: list[str]) -> Span:
    """One span, every field checked on its own (`_plain_columns` failed for its document)."""
    trace = raw.traceId
    if trace.__class__ is str and _HEX32.fullmatch(trace) and trace != _ZERO32:
        trace_source = None
    else:
        trace, trace_source = _slow_id(trace, 32)
    span = raw.spanId
    if span.__class__ is str and _HEX16.fullmatch(span) and span != _ZERO16:
        span_source = None
    else:
        span, span_source = _slow_id(span, 16)
    parent = raw.parentSpanId
    if parent is not None and (
        parent.__class__ is not str or not _HEX16.fullmatch(parent) or parent == _ZERO16
    ):
        parsed = parse_id(parent, 16)
        parent = parsed[0] if parsed else None
    start = _slow_time(raw.startTimeUnixNano, "start")
    end = _slow_time(raw.endTimeUnixNano, "end")
    out = _build(raw, trace, span, parent or None, service, start, end, sink)
    if trace_source is not None:
        out.attributes[SOURCE_TRACE_ID] = trace_source
    if span_source is not None:
        out.attributes[SOURCE_SPAN_ID] = span_source
    return out


def _build(
    raw: Any,
    trace: str,
    span: str,
    parent: str | None,
    service: str,
    start: int,
    end: int,
    sink: list[str],
) -> Span:
    """The span with its ids and times already read; the other fields read here."""
    name = raw.name
    if name.__class__ is not str or not name:
        name = text(name, "span name", sink, "?")
    error, message = False, ""
    status = raw.status
    if status is not None:
        code = status.code
        error = code.__class__ in (int, str) and code in (2, "STATUS_CODE_ERROR", "ERROR")
        message = status.message
        if message.__class__ is not str:
            message = text(message, "status", sink)
    kind = raw.kind
    kind = _KINDS.get(kind, "internal") if kind.__class__ is int else kind_name(kind)
    links = []
    if raw.links:
        for link in raw.links:
            lt, ls = parse_id(link.traceId, 32), parse_id(link.spanId, 16)
            if not (lt and ls):
                raise _Unusual
            links.append(Link(lt[0], ls[0]))
    return Span.fast(
        trace,
        span,
        parent,
        name,
        service,
        start,
        end,
        error,
        message,
        kind,
        _attributes(raw.attributes, sink),
        [_event(e, sink) for e in raw.events] if raw.events else [],
        links,
    )


def _plain_times(values: list[Any]) -> list[int] | None:
    """The times as ints when every one is a string of 1 to 19 ASCII digits within range (the
    usual case, checked in C); None when any needs a look of its own."""
    try:
        joined = "".join(values)
    except TypeError:  # not all strings
        return None
    if not values:
        return []
    lengths = set(map(len, values))
    # ASCII bytes' isdigit is a table lookup a byte; str.isdigit asks Unicode of each character
    if (
        min(lengths) < 1
        or max(lengths) > 19
        or not (joined.isascii() and joined.encode().isdigit())
    ):
        return None
    try:  # msgspec reads digits several times faster than int(str); JSON has no leading zeros
        times: list[int] = _INT_LIST.decode(f"[{','.join(values)}]")
    except msgspec.DecodeError:
        times = list(map(int, values))
    return times if max(times) <= _MAX_TIME else None


def _spans(raws: list[Any], services: list[str], sink: list[str]) -> list[Span]:
    """A document's spans (`services[i]` is the service of `raws[i]`). When all its ids and
    times are in the usual form (checked for the whole document at once, in C) each span skips
    those checks, and its usual fields are read inline here (this loop runs once a span: a
    call of `_build` and `_attributes` each cost more than the reading they do)."""
    starts = _plain_times(list(map(_START, raws)))
    ends = _plain_times(list(map(_END, raws)))
    traces = list(map(_TRACE_ID, raws))
    span_ids = list(map(_SPAN_ID, raws))
    parents = list(map(_PARENT_ID, raws))
    if (
        starts is None
        or ends is None
        or not _all_plain(traces, 32, _ZERO32)
        or not _all_plain(span_ids, 16, _ZERO16)
        or not _all_plain([p for p in parents if p], 16, _ZERO16)
    ):
        return [_span(raw, service, sink) for raw, service in zip(raws, services, strict=True)]
    keys = _KEYS
    kinds = _KINDS
    out = []
    for raw, trace, span, parent, service, start, end in zip(
        raws, traces, span_ids, parents, services, starts, ends, strict=True
    ):
        if raw.links or raw.events:
            out.append(_build(raw, trace, span, parent or None, service, start, end, sink))
            continue
        name = raw.name
        if name.__class__ is not str or not name:
            name = text(name, "span name", sink, "?")
        error, message = False, ""
        status = raw.status
        if status is not None:
            code = status.code
            error = code.__class__ in (int, str) and code in (2, "STATUS_CODE_ERROR", "ERROR")
            message = status.message
            if message.__class__ is not str:
                message = "" if message is None else text(message, "status", sink)
        kind = raw.kind
        kind = kinds.get(kind, "internal") if kind.__class__ is int else kind_name(kind)
        attributes: dict[str, Any] = {}
        items = raw.attributes
        if items:
            if len(items) > 64:
                charge(len(items))
            for kv in items:  # `_attributes`, inline
                value = kv.value
                key = keys.get(kv.key) or _new_key(kv.key)
                if value is not None and value.stringValue.__class__ is str:
                    attributes[key] = value.stringValue
                else:
                    attributes[key] = _value(value, sink)
        out.append(
            Span.fast(
                trace,
                span,
                parent or None,
                name,
                service,
                start,
                end,
                error,
                message,
                kind,
                attributes,
                [],
                [],
            )
        )
    return out


def decode_otlp(data: bytes) -> SpanSet | None:
    """The spans of one OTLP JSON document, or None when it is not exactly the well-formed
    shape (or msgspec is missing): then the tolerant reader must read it."""
    if not AVAILABLE:
        return None
    try:
        doc = _DECODER.decode(data)
    except (msgspec.DecodeError, RecursionError):
        return None
    sink: list[str] = ProblemList()
    raws: list[Any] = []
    services: list[str] = []
    try:
        for resource_spans in doc.resourceSpans:
            resource = resource_spans.resource
            attrs = _attributes(resource.attributes, sink) if resource is not None else {}
            service = sys.intern(text(attrs.get("service.name"), "service.name", sink, "unknown"))
            scopes = resource_spans.scopeSpans or resource_spans.instrumentationLibrarySpans
            for scope in scopes or ():
                if scope.spans:
                    raws += scope.spans
                    services += [service] * len(scope.spans)
        charge(len(raws))
        spans = _spans(raws, services, sink)
    except (_Unusual, RecursionError):
        return None
    return None if sink else SpanSet(spans)


def decode_trace_ids(data: bytes) -> list[str] | None:
    """The trace id of every span the readers will keep from one OTLP JSON document (a span
    needs a trace and a span id), decoding nothing else; None when the document is not that
    shape and must be read in full to tell."""
    if not AVAILABLE:
        return None
    try:
        doc = _ID_DECODER.decode(data)
    except (msgspec.DecodeError, RecursionError):
        return None
    if doc.resourceSpans is None:
        return None
    spans = [
        raw
        for resource_spans in doc.resourceSpans
        for scope in resource_spans.scopeSpans or resource_spans.instrumentationLibrarySpans or ()
        for raw in scope.spans or ()
    ]
    traces = list(map(_TRACE_ID, spans))
    if _all_plain(traces, 32, _ZERO32) and _all_plain(list(map(_SPAN_ID, spans)), 16, _ZERO16):
        return traces  # the usual case, checked in C: every id is lowercase hex, none zero
    ids = []
    for raw in spans:
        trace, span = raw.traceId, raw.spanId
        plain = span.__class__ is str and _HEX16.fullmatch(span) and span != _ZERO16
        if not plain and parse_id(span, 16) is None:
            continue
        if trace.__class__ is str and _HEX32.fullmatch(trace) and trace != _ZERO32:
            ids.append(trace)
        elif (parsed := parse_id(trace, 32)) is not None:
            ids.append(parsed[0])
    return ids


def _all_plain(ids: list[Any], length: int, zero: str) -> bool:
    """True when every id is a str of `length` lowercase hex digits and none is all zeros."""
    if not ids:
        return True
    try:
        joined = "".join(ids)
    except TypeError:  # an id that is not a str
        return False
    # bytes.translate deleting the hex digits (a table lookup a byte) leaves nothing exactly
    # when all are lowercase hex: several times cheaper than a regular expression's match
    return (
        set(map(len, ids)) == {length}
        and joined.isascii()
        and not joined.encode().translate(None, _HEX_DIGITS)
        and zero not in ids  # not `in joined`: sequential ids (…0001, …0002) join into zeros
    )
