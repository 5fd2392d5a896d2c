"""Kafka record headers (``list[tuple[str, bytes]]``) as an OTel carrier.

Reading is strict where it matters: a propagation header that appears twice with different
values is ambiguous (a forwarded record with a stale ``traceparent``) and is refused, as are
``None``, non-UTF-8, oversized and non-bytes values; each refusal is counted once by
`tracectx.metrics.note_rejected` under one of its fixed reasons. Writing *replaces* existing
propagation headers instead of appending to them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry import propagate
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import Getter

from tracectx.metrics import note_rejected
from tracectx.propagation import BAGGAGE, MAX_HEADER_VALUE, capture, extract

__all__ = [
    "DUPLICATE",
    "HeaderGetter",
    "context_from_headers",
    "header_map",
    "normalise",
    "with_context",
]

Headers = list[tuple[str, bytes]]
TRANSPORT = "kafka"


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
    non-bytes values. The header name is the log detail: it is one the propagator asked for."""

    def get(self, carrier: Mapping[str, Any], key: str) -> list[str] | None:
        if key not in carrier:
            return None
        raw = carrier[key]
        if raw is None:
            note_rejected(TRANSPORT, "null_header", key)
            return None
        if raw is DUPLICATE:
            note_rejected(TRANSPORT, "duplicate_header", key)
            return None
        if not isinstance(raw, bytes | bytearray | memoryview | str):
            note_rejected(TRANSPORT, "wrong_type_header", key)
            return None
        if _size(raw) > MAX_HEADER_VALUE:
            reason = "oversized_baggage" if key == BAGGAGE else "oversized_header"
            note_rejected(TRANSPORT, reason, key)
            return None
        if isinstance(raw, str):
            return [raw]
        try:
            return [bytes(raw).decode("utf-8")]
        except UnicodeDecodeError:
            note_rejected(TRANSPORT, "non_utf8_header", key)
            return None

    def keys(self, carrier: Mapping[str, Any]) -> list[str]:
        return list(carrier)


_getter = HeaderGetter()


def context_from_headers(headers: Any) -> Context:
    """The producer's context (span + baggage) from a record's headers (a list, or a
    `header_map`); a fresh root if they are unusable."""
    view = headers if isinstance(headers, dict) else header_map(headers)
    if not view:
        return Context()
    return extract(view, getter=_getter, transport=TRANSPORT)


def with_context(headers: Any, context: Context | None = None) -> Headers:
    """`headers` with the propagation headers of `context` (default: current) replacing any
    already there; the caller's list is not modified."""
    fields = _propagation_fields()
    out = [(k, v) for k, v in normalise(headers) if k.lower() not in fields]
    out.extend((k, v.encode()) for k, v in capture(context).items())
    return out
