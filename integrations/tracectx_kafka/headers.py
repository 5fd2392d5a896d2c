"""Kafka record headers (``list[tuple[str, bytes]]``) as an OTel carrier.

Reading is strict where it matters: a propagation header that appears twice with different
values is ambiguous (a forwarded record with a stale ``traceparent``) and is refused, as are
``None``, non-UTF-8, oversized and non-bytes values; each refusal is counted once by
`tracectx.metrics.note_rejected` under one of its fixed reasons. Writing *replaces* existing
propagation headers instead of appending to them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, cast

from opentelemetry import propagate, trace
from opentelemetry.baggage import get_all as get_baggage
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.propagators.textmap import Getter, TextMapPropagator
from opentelemetry.trace import (
    INVALID_SPAN_CONTEXT,
    NonRecordingSpan,
    Span,
    SpanContext,
    TraceFlags,
)
from opentelemetry.trace.propagation import _SPAN_KEY
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from tracectx import config as _config
from tracectx.config import settings
from tracectx.metrics import note_rejected
from tracectx.propagation import (
    BAGGAGE,
    MAX_HEADER_VALUE,
    TRACEPARENT,
    capture,
    extract,
    extract_checked,
)

__all__ = [
    "DUPLICATE",
    "EMPTY",
    "HeaderGetter",
    "context_from_headers",
    "encoded",
    "header_map",
    "normalise",
    "well_formed",
    "with_context",
]

Headers = list[tuple[str, bytes]]
TRANSPORT = "kafka"
TRACESTATE = "tracestate"


def well_formed(headers: Any) -> bool:
    """Whether `headers` has a shape some client takes: a mapping, or a list or tuple of
    2-item pairs named by text."""
    if isinstance(headers, Mapping):
        return True
    if not isinstance(headers, list | tuple):
        return False
    return all(
        isinstance(pair, tuple | list) and len(pair) == 2 and isinstance(pair[0], str)
        for pair in headers
    )


def normalise(headers: Any) -> Headers:
    """Headers as a new list of pairs, whatever came in: None, a list or tuple of pairs, or a
    mapping (confluent-kafka accepts ``{name: value}`` on ``produce``)."""
    if headers is None:
        return []
    if isinstance(headers, Mapping):
        return list(headers.items())
    return list(headers)


_fields: tuple[object, frozenset[str]] = (None, frozenset())


def _propagation_fields() -> frozenset[str]:
    """The header names the global propagator writes, recomputed only when it is replaced."""
    global _fields
    textmap = propagate.get_global_textmap()
    if _fields[0] is not textmap:
        _fields = (textmap, frozenset(f.lower() for f in textmap.fields))
    return _fields[1]


DUPLICATE: Any = object()
_TEXT = (bytes, bytearray, str)


def _same(a: Any, b: Any) -> bool:
    """Equal header values; only bytes and text are compared (a deeply nested or hostile
    object is never asked for ``==``)."""
    if a is b:
        return True
    return type(a) is type(b) and isinstance(a, _TEXT) and a == b


def header_map(headers: Any) -> dict[str, Any]:
    """Lower-cased header name → value, in one pass; a name seen twice with different values
    maps to `DUPLICATE` (refused on read). Items that are not ``(str, value)`` pairs, and
    headers that are not a list or tuple, are ignored."""
    out: dict[str, Any] = {}
    if not isinstance(headers, list | tuple):
        return out
    for item in headers:
        if not (isinstance(item, tuple | list) and len(item) == 2 and isinstance(item[0], str)):
            continue
        key, value = item[0].lower(), item[1]
        if key in out and not _same(out[key], value):
            value = DUPLICATE
        out[key] = value
    return out


def _size(value: bytes | bytearray | memoryview | str) -> int:
    return value.nbytes if isinstance(value, memoryview) else len(value)


class HeaderGetter(Getter[Mapping[str, Any]]):
    """Reads a `header_map`; refuses (and counts) duplicated, None, oversized, non-UTF-8 and
    non-bytes values. The header name is the log detail: it is one the propagator asked for.
    `refused` tells whether this getter refused anything (a fresh one per extraction)."""

    def __init__(self) -> None:
        self.refused = False

    def get(self, carrier: Mapping[str, Any], key: str) -> list[str] | None:
        if key not in carrier:
            return None
        reason = ""
        raw = carrier[key]
        if raw is None:
            reason = "null_header"
        elif raw is DUPLICATE:
            reason = "duplicate_header"
        elif not isinstance(raw, bytes | bytearray | memoryview | str):
            reason = "wrong_type_header"
        elif _size(raw) > MAX_HEADER_VALUE:
            reason = "oversized_baggage" if key == BAGGAGE else "oversized_header"
        elif isinstance(raw, str):
            return [raw]
        else:
            try:
                return [bytes(raw).decode("utf-8")]
            except UnicodeDecodeError:
                reason = "non_utf8_header"
        note_rejected(TRANSPORT, reason, key)
        self.refused = True
        return None

    def keys(self, carrier: Mapping[str, Any]) -> list[str]:
        return list(carrier)


EMPTY = Context()


def context_from_headers(headers: Any) -> Context:
    """The producer's context (span + baggage) from a record's headers (a list, or a
    `header_map`); a fresh root if they are unusable, `EMPTY` if there are none.

    With OTel's default W3C propagators the result depends only on the ``traceparent``,
    ``tracestate`` and ``baggage`` values (and the settings): records without them cost no
    extraction, and a clean result is reused for the next record carrying the same bytes
    (all records sent from one context do). A ``traceparent`` with no ``tracestate`` or
    ``baggage`` (each span-mode send writes a new one) is parsed here, not by the propagator:
    the same context for a third of the instructions. A refused header is never cached: it is
    counted on every record that carries it."""
    plan = _plan
    if plan.textmap is not (propagate._HTTP_TEXT_FORMAT if _TEXTMAP_READ else _textmap()):
        plan = _current_plan()
    if plan.parts is not None and type(headers) in _SEQUENCES:
        first = headers[0] if len(headers) == 1 else None
        key: tuple[Any, ...] | None
        if (
            type(first) is tuple
            and len(first) == 2
            and type(first[0]) is str
            and first[0] == TRACEPARENT
            and type(first[1]) is bytes
        ):
            # the usual: one traceparent, most often the previous record's bytes again
            current = _config._current if _SETTINGS_READ else settings()
            last = plan.last
            if last[2] is current and first[1] == last[0]:
                return last[1]
            key = (first[1], ABSENT, ABSENT)
        else:
            key = _w3c_values(headers)
            current = _config._current if _SETTINGS_READ else settings()
        if key is not None:  # well-formed: (str, bytes) pairs, no conflicting duplicates
            if key[0] is ABSENT and key[2] is ABSENT:
                return EMPTY
            if plan.traceparent and key[1] is ABSENT and key[2] is ABSENT:
                # a traceparent alone: parsed here (each span-mode send writes its own), kept
                # by its bytes
                value = key[0]
                found = plan.parsed.get(value)
                if found is None:
                    found = _parsed_traceparent(value)
                    if found is not None:
                        parsed = plan.parsed
                        if len(parsed) >= plan.MAX_CACHED:
                            parsed.clear()
                        parsed[value] = found
                if found is not None:
                    plan.last = (value, found, current)  # replaced whole: thread-safe
                    return found
            if plan.settings is current:
                found = plan.cache.get(key)
                if found is not None:
                    if key[1] is ABSENT and key[2] is ABSENT:
                        plan.last = (key[0], found, current)  # replaced whole: thread-safe
                    return found
    view = headers if isinstance(headers, dict) else header_map(headers)
    if not view:
        return EMPTY
    if plan.parts is None:
        return extract(view, getter=HeaderGetter(), transport=TRANSPORT)
    if TRACEPARENT not in view and BAGGAGE not in view:
        return EMPTY  # the W3C propagators read nothing else (tracestate needs a traceparent)
    values = (
        view.get(TRACEPARENT, ABSENT),
        view.get(TRACESTATE, ABSENT),
        view.get(BAGGAGE, ABSENT),
    )
    return plan.extracted(view, values)


_SEQUENCES = (list, tuple)
_textmap = propagate.get_global_textmap
# The per-record checks that the propagator and the settings are unchanged read the variables
# behind `propagate.get_global_textmap` and `tracectx.config.settings` directly (a call each
# saved per record) where they are what those functions return; else the functions are called.
_TEXTMAP_READ = getattr(propagate, "_HTTP_TEXT_FORMAT", None) is _textmap()
_SETTINGS_READ = getattr(_config, "_current", None) is settings()
_W3C_FIELDS = {TRACEPARENT: 0, TRACESTATE: 1, BAGGAGE: 2}


# Both of `setup`'s values can be read from those variables directly (callers on a hot path).
SETUP_READ = _TEXTMAP_READ and _SETTINGS_READ


def setup() -> tuple[object, object]:
    """The global propagator and tracectx's settings right now: what `encoded` headers depend
    on besides the context (a cache of them is stale once either is replaced)."""
    return (
        propagate._HTTP_TEXT_FORMAT if _TEXTMAP_READ else _textmap(),
        _config._current if _SETTINGS_READ else settings(),
    )


def _w3c_values(headers: list[Any] | tuple[Any, ...]) -> tuple[Any, ...] | None:
    """The raw ``traceparent``, ``tracestate`` and ``baggage`` values (`ABSENT` when not there)
    of headers that are all ``(str, bytes)`` pairs with those three names in lower case and not
    repeated with another value; None for anything else (`header_map` then decides)."""
    values = [ABSENT, ABSENT, ABSENT]
    for item in headers:
        if type(item) is not tuple or len(item) != 2:
            return None
        name, value = item
        if type(value) is not bytes or type(name) is not str:
            return None
        at = _W3C_FIELDS.get(name)
        if at is None:
            if name.lower() in _W3C_FIELDS:
                return None  # another spelling of a propagation header
            continue
        seen = values[at]
        if seen is not ABSENT and seen != value:
            return None
        values[at] = value
    return tuple(values)


def with_context(headers: Any, context: Context | None = None, span: Span | None = None) -> Headers:
    """`headers` with the propagation headers of `context` (default: current; with `span`, as
    if `span` were its current span) replacing any already there; the caller's list is not
    modified. Headers the client would not take (a text, pairs that are not pairs …) come
    back untouched: the client then raises its own error for them (kafka-python and
    confluent-kafka a TypeError), as it would uninstrumented."""
    if headers is not None and not well_formed(headers):
        return cast(Headers, headers)
    given = normalise(headers)
    if not given:
        return encoded(context, span)
    fields = _propagation_fields()
    out = [(k, v) for k, v in given if k.lower() not in fields]
    out.extend(encoded(context, span))
    return out


class _Plan:
    """How to write the propagation headers of one global propagator: `parts` is set only when
    it is OTel's own W3C trace context and/or W3C baggage propagator (exact types, the default
    ``tracecontext,baggage``), whose output `encoded` then formats directly, byte for byte."""

    MAX_CACHED = 1024
    __slots__ = ("cache", "last", "parsed", "parts", "settings", "textmap", "traceparent")

    def __init__(self, textmap: object) -> None:
        self.textmap = textmap
        self.parts: tuple[TextMapPropagator, ...] | None = None
        self.cache: dict[tuple[Any, ...], Context] = {}  # clean extractions (see `cached`)
        self.settings: object = None  # the settings `cache` is valid for
        # the last cache hit for a lone traceparent: (its bytes, the context, the settings)
        self.last: tuple[bytes | None, Context, object] = (None, EMPTY, None)
        inner = getattr(textmap, "_propagators", None)
        if type(textmap) is CompositePropagator and isinstance(inner, list | tuple):
            parts = tuple(inner)
        else:
            parts = (textmap,)
        kinds = [type(p) for p in parts]
        if kinds and len(set(kinds)) == len(kinds) and set(kinds) <= _W3C:
            self.parts = parts
        # whether a lone traceparent may be parsed by `_parsed_traceparent`; what it gave, by
        # the header's bytes (whatever the settings: they only decide what baggage is kept)
        self.traceparent = self.parts is not None and TraceContextTextMapPropagator in kinds
        self.parsed: dict[bytes, Context] = {}

    def cached(self, key: tuple[Any, ...] | list[Any]) -> Context | None:
        """The context extracted before from propagation header values `key`, if clean (the
        settings decide what baggage is kept: a change of settings empties the cache)."""
        cache = self.cache
        current = settings()
        if self.settings is not current:
            cache.clear()
            self.settings = current
        return cache.get(tuple(key))

    def extracted(self, view: Mapping[str, Any], key: tuple[Any, ...]) -> Context:
        """The context extracted from `view`, whose propagation header values are `key`:
        cached when they are all bytes and nothing was refused."""
        cacheable = _cacheable(key[0]) and _cacheable(key[1]) and _cacheable(key[2])
        found = self.cached(key) if cacheable else None
        if found is not None:
            return found
        cache = self.cache
        getter = HeaderGetter()
        ctx, refused = extract_checked(view, getter=getter, transport=TRANSPORT)
        if cacheable and not (refused or getter.refused):
            if len(cache) >= self.MAX_CACHED:
                cache.clear()
            cache[key] = ctx
        return ctx


ABSENT: Any = object()  # a header that is not there (a None value is one that is)

# The usual traceparent: version 00, lower-case hex, nothing around it. Anything else (other
# versions, spaces, upper case, all-zero ids) goes through the propagator.
_TRACEPARENT_00 = re.compile(rb"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
_FLAGS = {b"%02x" % i: TraceFlags(i) for i in range(256)}


def _parsed_traceparent(value: bytes) -> Context | None:
    """The context OTel's W3C propagators extract from headers whose one propagation header is
    the ``traceparent`` `value` (its span as a remote parent, no baggage), made without the
    propagator, getter and carrier calls; None when `value` is not the usual form (the
    propagator then reads it, and counts it if refused)."""
    match = _TRACEPARENT_00.fullmatch(value)
    if match is None:
        return None
    trace_id, span_id, flags = match.group(1, 2, 3)
    trace_id, span_id = int(trace_id, 16), int(span_id, 16)
    if not trace_id or not span_id:
        return None  # refused: counted by the general path
    sc = SpanContext(trace_id, span_id, True, _FLAGS[flags])
    return Context({_SPAN_KEY: NonRecordingSpan(sc)})


def _cacheable(value: Any) -> bool:
    return value is ABSENT or type(value) is bytes


_W3C: frozenset[type] = frozenset({TraceContextTextMapPropagator, W3CBaggagePropagator})
_plan = _Plan(None)


def _current_plan() -> _Plan:
    """The plan for the global propagator, remade only when it is replaced."""
    global _plan
    textmap = propagate.get_global_textmap()
    plan = _plan  # one read: safe across threads (a race only makes it twice)
    if plan.textmap is not textmap:
        plan = _plan = _Plan(textmap)
    return plan


def encoded(context: Context | None = None, span: Span | None = None) -> Headers:
    """The propagation headers the global propagator writes for `context` (default: current;
    with `span`, as if `span` were its current span), as ``(name, UTF-8 bytes)`` pairs.

    For OTel's default W3C propagators the headers are formatted here — one ``traceparent``,
    ``tracestate`` only when the span has one, ``baggage`` only when there is baggage —
    skipping the carrier and the setter; any other propagator is called as configured."""
    plan = _current_plan()
    if plan.parts is None:
        ctx = trace.set_span_in_context(span, context) if span is not None else context
        return [(k, v.encode()) for k, v in capture(ctx).items()]
    out: Headers = []
    for part in plan.parts:
        if type(part) is TraceContextTextMapPropagator:
            sc = (span if span is not None else trace.get_current_span(context)).get_span_context()
            if sc == INVALID_SPAN_CONTEXT:
                continue
            out.append(
                (
                    TRACEPARENT,
                    f"00-{sc.trace_id:032x}-{sc.span_id:016x}-{sc.trace_flags:02x}".encode(),
                )
            )
            if sc.trace_state:
                out.append((TRACESTATE, sc.trace_state.to_header().encode()))
        elif get_baggage(context):
            carrier: dict[str, str] = {}
            part.inject(carrier, context)
            out.extend((k, v.encode()) for k, v in carrier.items())
    return out
