"""Dead-letter topics that keep the story: the failed record's trace and its error's identity.

`send_to_dlq` forwards a record whose handling failed, with the current trace context
(replacing the record's old propagation headers) and the error envelope (kind, code, redacted
metadata, error id, origin) in the ``tracectx-error`` header. `dlq_error` reads it back; a DLQ
consumer's process span shows the same error id (the span absorbed it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tracectx import TracedError, handled
from tracectx.envelope import EnvelopeError, dumps_envelope, loads_envelope
from tracectx.metrics import note_rejected
from tracectx_kafka.headers import TRANSPORT, header_map, normalise, with_context

__all__ = ["ERROR_HEADER", "SOURCE_HEADER", "dlq_error", "error_from_headers", "send_to_dlq"]

ERROR_HEADER = "tracectx-error"
SOURCE_HEADER = "tracectx-dlq-source"
_OWN_HEADERS = frozenset({ERROR_HEADER, SOURCE_HEADER})


def send_to_dlq(
    producer: Any,
    record: Any,
    exc: BaseException,
    topic: str | None = None,
    *,
    value: Any = None,
    key: Any = None,
) -> Any:
    """Send `record` to `topic` (default ``<topic>.dlq``) with `exc`'s envelope; returns the
    producer's future.

    The current span (the failed record's) absorbs `exc` — dead-lettering is how it was dealt
    with — and becomes its origin if nothing recorded it before, so the envelope knows where it
    was born. Value and key default to the record's own (pass them when the producer
    serialises differently).
    """
    handled(exc)
    headers = [(k, v) for k, v in normalise(record.headers) if k not in _OWN_HEADERS]
    headers.append((ERROR_HEADER, dumps_envelope(exc)))
    headers.append((SOURCE_HEADER, f"{record.topic}/{record.partition}/{record.offset}".encode()))
    return producer.send(
        topic or f"{record.topic}.dlq",
        value=record.value if value is None else value,
        key=record.key if key is None else key,
        headers=with_context(headers),
    )


def dlq_error(record: Any) -> TracedError | None:
    """The error a record was dead-lettered with, rebuilt with its identity; None if the record
    has no (usable) ``tracectx-error`` header — a corrupt one is counted and logged."""
    return error_from_headers(header_map(record.headers))


def error_from_headers(headers: Mapping[str, Any]) -> TracedError | None:
    """`dlq_error` on a `header_map`."""
    raw = headers.get(ERROR_HEADER)
    if raw is None:
        return None
    if not isinstance(raw, bytes | str):
        note_rejected(TRANSPORT, "non-bytes error envelope")
        return None
    try:
        return loads_envelope(raw)
    except EnvelopeError as exc:
        note_rejected(TRANSPORT, f"corrupt error envelope ({exc})")
        return None
