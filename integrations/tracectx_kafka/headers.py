"""Kafka record headers (``list[tuple[str, bytes]]``) as an OTel carrier.

Reading is strict where it matters: a propagation header that appears twice with different
values is ambiguous (a forwarded record with a stale ``traceparent``) and is refused, as are
``None`` and non-UTF-8 values; each refusal is counted by `tracectx.metrics.note_rejected`.
Writing *replaces* existing propagation headers instead of appending to them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from opentelemetry import propagate
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import Getter

from tracectx.metrics import note_rejected
from tracectx.propagation import capture, extract

__all__ = ["HeaderGetter", "context_from_headers", "normalise", "with_context"]

Headers = list[tuple[str, bytes]]
TRANSPORT = "kafka"


def normalise(headers: Any) -> Headers:
    """Headers as kafka-python wants them: a new list, whatever sequence (or None) came in."""
    if headers is None:
        return []
    return list(headers)


def _propagation_fields() -> frozenset[str]:
    return frozenset(f.lower() for f in propagate.get_global_textmap().fields)


class HeaderGetter(Getter[Sequence[tuple[str, Any]]]):
    """Reads one value per key from a header list; refuses duplicates, None and non-UTF-8."""

    def get(self, carrier: Sequence[tuple[str, Any]], key: str) -> list[str] | None:
        wanted = key.lower()
        values = {value for name, value in _pairs(carrier) if name.lower() == wanted}
        if not values:
            return None
        if len(values) > 1:
            note_rejected(TRANSPORT, f"duplicated {wanted} header")
            return None
        (raw,) = values
        if raw is None:
            note_rejected(TRANSPORT, f"None {wanted} header")
            return None
        if isinstance(raw, bytes | bytearray | memoryview):
            try:
                return [bytes(raw).decode("utf-8")]
            except UnicodeDecodeError:
                note_rejected(TRANSPORT, f"non-UTF-8 {wanted} header")
                return None
        return [raw] if isinstance(raw, str) else None

    def keys(self, carrier: Sequence[tuple[str, Any]]) -> list[str]:
        return [name for name, _ in _pairs(carrier)]


def _pairs(carrier: Iterable[Any]) -> Iterable[tuple[str, Any]]:
    for item in carrier or ():
        if isinstance(item, tuple | list) and len(item) == 2 and isinstance(item[0], str):
            yield item[0], item[1]


_getter = HeaderGetter()


def context_from_headers(headers: Any) -> Context:
    """The producer's context (span + baggage) from a record's headers; fresh root if unusable."""
    return extract(headers or [], getter=_getter, transport=TRANSPORT)


def with_context(headers: Any, context: Context | None = None) -> Headers:
    """`headers` with the propagation headers of `context` (default: current) replacing any
    already there; the caller's list is not modified."""
    fields = _propagation_fields()
    out = [(k, v) for k, v in normalise(headers) if k.lower() not in fields]
    out.extend((k, v.encode()) for k, v in capture(context).items())
    return out
