"""Dead-letter topics that keep the story: the failed record's trace and its error's identity.

`send_to_dlq` forwards a record whose handling failed, with the current trace context
(replacing the record's old propagation headers) and the error envelope (kind, code, redacted
metadata, error id, origin) in the ``tracectx-error`` header. `dlq_error` reads it back; a DLQ
consumer's process span shows the same error id (the span absorbed it). Both take a record and
a producer of any of the three clients (kafka-python, aiokafka, confluent-kafka).

Each envelope is read once: the process span of a dead-lettered record reads it (to show the
error it absorbed) and `dlq_error` on that record returns the same rebuilt error, so a bad one
is counted once too. Reading never raises: a header that is not there gives None; one that is
there but unusable (duplicated, None, not bytes, over `MAX_ENVELOPE_BYTES`, not UTF-8, not an
envelope — however deeply nested) gives None too, counted by `tracectx.metrics.note_rejected`
under a fixed reason with a fixed detail: nothing from the inbound bytes reaches the metric
labels or the log.
"""

from __future__ import annotations

import contextvars
from collections.abc import Mapping
from typing import Any

from tracectx import TracedError, mark_handled
from tracectx.envelope import MAX_ENVELOPE_BYTES, EnvelopeError, dumps_envelope, loads_envelope
from tracectx.metrics import note_rejected
from tracectx_kafka.headers import DUPLICATE, TRANSPORT, header_map, normalise, with_context
from tracectx_kafka.records import record_info

__all__ = [
    "ERROR_HEADER",
    "SOURCE_HEADER",
    "dlq_error",
    "error_from_headers",
    "read_error",
    "send_to_dlq",
]

ERROR_HEADER = "tracectx-error"
SOURCE_HEADER = "tracectx-dlq-source"
_OWN_HEADERS = frozenset({ERROR_HEADER, SOURCE_HEADER})
# The last envelope read in this context: (the record, what it gave). Keyed by the record, not
# its header list: a confluent-kafka Message builds a new list on every ``headers()`` call.
_last_read: contextvars.ContextVar[tuple[object, TracedError | None] | None] = (
    contextvars.ContextVar("tracectx_kafka_last_envelope", default=None)
)


def send_to_dlq(
    producer: Any,
    record: Any,
    exc: BaseException,
    topic: str | None = None,
    *,
    value: Any = None,
    key: Any = None,
    **options: Any,
) -> Any:
    """Send `record` to `topic` (default ``<topic>.dlq``) with `exc`'s envelope; returns what
    the client returns: kafka-python's future, aiokafka's awaitable (``await`` it for the
    delivery future), None from confluent-kafka's ``produce`` (deliver with ``poll``/``flush``;
    pass ``on_delivery=`` in `options`, which go to the client's call as they are).

    The current span (the failed record's) absorbs `exc` — dead-lettering is how it was dealt
    with — and becomes its origin if nothing recorded it before, so the envelope knows where it
    was born. Value and key default to the record's own (pass them when the producer
    serialises differently).
    """
    mark_handled(exc)
    info = record_info(record)
    headers = [(k, v) for k, v in normalise(info.headers) if k not in _OWN_HEADERS]
    headers.append((ERROR_HEADER, dumps_envelope(exc)))
    headers.append((SOURCE_HEADER, f"{info.topic}/{info.partition}/{info.offset}".encode()))
    if value is None:
        value = record.value() if callable(record.value) else record.value
    send = getattr(producer, "send", None) or producer.produce  # confluent-kafka: produce
    return send(
        topic or f"{info.topic}.dlq",
        value=value,
        key=info.key if key is None else key,
        headers=with_context(headers),
        **options,
    )


def dlq_error(record: Any) -> TracedError | None:
    """The error a record was dead-lettered with, rebuilt with its identity; None if the record
    has no (usable) ``tracectx-error`` header — an unusable one is counted and logged. Never
    raises, whatever the headers hold."""
    last = _last_read.get()
    if last is not None and last[0] is record:
        return last[1]  # its process span (or an earlier call) read it already
    try:
        headers = record_info(record).headers
    except Exception:  # a record whose accessors fail has no usable envelope
        return None
    return read_error(record, headers)


def read_error(
    record: Any, headers: Any, view: Mapping[str, Any] | None = None
) -> TracedError | None:
    """`dlq_error` on `record`, whose raw `headers` were read already (`view`: their
    `header_map`, if made already); remembered for this context, so reading the same record
    again does not count again."""
    view = header_map(headers) if view is None else view
    if ERROR_HEADER not in view:
        return None
    found = error_from_headers(view)
    _last_read.set((record, found))
    return found


def error_from_headers(headers: Mapping[str, Any]) -> TracedError | None:
    """`dlq_error` on a `header_map`."""
    if ERROR_HEADER not in headers:
        return None
    text, reason = _envelope_text(headers[ERROR_HEADER])
    if text is not None:
        try:
            return loads_envelope(text)
        except (EnvelopeError, RecursionError):  # the envelope reader bounds depth; belt and braces
            reason = "corrupt_envelope"
    note_rejected(TRANSPORT, reason, ERROR_HEADER)
    return None


def _envelope_text(raw: Any) -> tuple[str | None, str]:
    """The envelope header as text, or None and the (fixed) reason it is refused."""
    if raw is None:
        return None, "null_header"
    if raw is DUPLICATE:
        return None, "duplicate_header"
    if not isinstance(raw, bytes | bytearray | memoryview | str):
        return None, "wrong_type_header"
    if (raw.nbytes if isinstance(raw, memoryview) else len(raw)) > MAX_ENVELOPE_BYTES:
        return None, "oversized_header"
    if isinstance(raw, str):
        return raw, ""
    try:
        return bytes(raw).decode("utf-8"), ""
    except UnicodeDecodeError:
        return None, "non_utf8_header"
