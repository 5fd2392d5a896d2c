"""One view of a consumed record, whichever client produced it.

kafka-python and aiokafka records expose ``topic``/``partition``/``offset``/``key``/``headers``
as attributes; a confluent-kafka ``Message`` exposes them as methods (and builds a new header
list on every ``headers()`` call). `record_info` reads either once, so the span, header and
dead-letter code is written once for all three clients.
"""

from __future__ import annotations

import types
from typing import Any, NamedTuple

__all__ = ["RecordInfo", "is_event", "record_info"]


class RecordInfo(NamedTuple):
    """What the tracing code reads from a record; `headers` is the client's raw header value
    (a list or tuple of ``(str, bytes)`` pairs, or None) — untrusted, read by `header_map`."""

    topic: str
    partition: int
    offset: int
    key: Any
    headers: Any
    tombstone: bool = False  # the record has no value (None)


def _call(value: Any) -> Any:
    return value() if callable(value) else value


_NO_VALUE = object()  # a record without a value field is no tombstone


def _value_of(record: Any) -> Any:
    """`record`'s value: a confluent ``Message``'s accessor is called, a deserialised value
    never is (even a callable one)."""
    value = getattr(record, "value", _NO_VALUE)
    if isinstance(value, types.BuiltinMethodType | types.MethodType):
        return value()
    return value


def record_info(record: Any) -> RecordInfo:
    """`record`'s topic, partition, offset, key and headers, from attributes or (a confluent
    ``Message``) accessor methods; a missing field reads as None."""
    return RecordInfo(
        _call(getattr(record, "topic", None)),
        _call(getattr(record, "partition", None)),
        _call(getattr(record, "offset", None)),
        _call(getattr(record, "key", None)),
        _call(getattr(record, "headers", None)),
        _value_of(record) is None,
    )


def is_event(record: Any) -> bool:
    """True for a confluent-kafka ``Message`` that is an event (``error()`` set, e.g. end of
    partition), not a record: it gets no span."""
    error = getattr(record, "error", None)
    return callable(error) and error() is not None
