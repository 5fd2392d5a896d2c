"""Kafka record headers (``list[tuple[str, bytes]]``) as an OTel carrier.

Reading is strict where it matters: a propagation header that appears twice with different
values is ambiguous (a forwarded record with a stale ``traceparent``) and is refused, as are
``None`` and non-UTF-8 values; each refusal is counted by `tracectx.metrics.note_rejected`.
Writing *replaces* existing propagation headers instead of appending to them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry import propagate
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import Getter

from tracectx.metrics import note_rejected
from tracectx.propagation import capture, extract

__all__ = ["HeaderGetter", "context_from_headers", "header_map", "normalise", "with_context"]

Headers = list[tuple[str, bytes]]
TRANSPORT = "kafka"


def normalise(headers: Any) -> Headers:
    """Headers as kafka-python wants them: a new list, whatever sequence (or None) came in."""
    if headers is None:
        return []
    return list(headers)


_fields: tuple[object, frozenset[str]] = (None, frozenset())


def _propagation_fields() -> frozenset[str]:
    """The header names the global propagator writes, recomputed only when it is replaced."""
    global _fields
    textmap = propagate.get_global_textmap()
    if _fields[0] is not textmap:
        _fields = (textmap, frozenset(f.lower() for f in textmap.fields))
    return _fields[1]


_DUPLICATE = object()


def header_map(headers: Any) -> dict[str, Any]:
    """Lower-cased header name → value, in one pass; a name seen twice with different values
    maps to a duplicate marker (refused on read)."""
    out: dict[str, Any] = {}
    for item in headers or ():
        if not (isinstance(item, tuple | list) and len(item) == 2 and isinstance(item[0], str)):
            continue
        key, value = item[0].lower(), item[1]
        if key in out and out[key] != value:
            value = _DUPLICATE
        out[key] = value
    return out


class HeaderGetter(Getter[Mapping[str, Any]]):
    """Reads a `header_map`; refuses duplicated, None and non-UTF-8 values (and counts them)."""

    def get(self, carrier: Mapping[str, Any], key: str) -> list[str] | None:
        raw = carrier.get(key)
        if raw is None:
            if key in carrier:
                note_rejected(TRANSPORT, f"None {key} header")
            return None
        if raw is _DUPLICATE:
            note_rejected(TRANSPORT, f"duplicated {key} header")
            return None
        if isinstance(raw, bytes | bytearray | memoryview):
            try:
                return [bytes(raw).decode("utf-8")]
            except UnicodeDecodeError:
                note_rejected(TRANSPORT, f"non-UTF-8 {key} header")
                return None
        return [raw] if isinstance(raw, str) else None

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
