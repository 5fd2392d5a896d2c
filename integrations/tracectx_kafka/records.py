"""One view of a consumed record, whichever client produced it.

kafka-python and aiokafka records expose ``topic``/``partition``/``offset``/``key``/``headers``
as attributes; a confluent-kafka ``Message`` exposes them as methods (and builds a new header
list on every ``headers()`` call). `record_info` reads either once, so the span, header and
dead-letter code is written once for all three clients.
"""

from __future__ import annotations

import types
from typing import Any, NamedTuple

__all__ = ["UNREAD", "RecordInfo", "is_event", "record_info"]


class RecordInfo(NamedTuple):
    """What the tracing code reads from a record; `headers` is the client's raw header value
    (a list or tuple of ``(str, bytes)`` pairs, or None) — untrusted, read by `header_map`."""

    topic: str
    partition: int
    offset: int
    key: Any
    headers: Any
    tombstone: bool = False  # the record has no value (None)


_NO_VALUE = object()  # a record without a value field is no tombstone
_METHODS = (types.BuiltinMethodType, types.MethodType)
UNREAD: Any = object()  # `record_info`'s headers argument: not read yet
_new = tuple.__new__


def _value_of(record: Any) -> Any:
    """`record`'s value: a confluent ``Message``'s accessor is called, a deserialised value
    never is (even a callable one)."""
    value = getattr(record, "value", _NO_VALUE)
    if isinstance(value, _METHODS):
        return value()
    return value


def record_info(record: Any, headers: Any = UNREAD) -> RecordInfo:
    """`record`'s topic, partition, offset, key and headers (`headers`: its raw headers, when
    the caller read them already), from attributes or (a confluent ``Message``) accessor
    methods; a missing field reads as None."""
    # one expression per field, no helper call: this runs once per consumed record
    topic = getattr(record, "topic", None)
    partition = getattr(record, "partition", None)
    offset = getattr(record, "offset", None)
    key = getattr(record, "key", None)
    if headers is UNREAD:
        headers = getattr(record, "headers", None)
        if callable(headers):
            headers = headers()
    value = getattr(record, "value", _NO_VALUE)  # `_value_of`, inlined
    if isinstance(value, _METHODS):
        value = value()
    fields = (
        topic() if callable(topic) else topic,
        partition() if callable(partition) else partition,
        offset() if callable(offset) else offset,
        key() if callable(key) else key,
        headers,
        value is None,
    )
    return _new(RecordInfo, fields)  # `RecordInfo._make` without its call and length check


def is_event(record: Any) -> bool:
    """True for a confluent-kafka ``Message`` that is an event (``error()`` set, e.g. end of
    partition), not a record: it gets no span."""
    error = getattr(record, "error", None)
    return callable(error) and error() is not None
