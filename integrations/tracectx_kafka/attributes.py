"""Messaging semantic-convention attributes for Kafka spans (current OTel names).

Span kinds follow the conventions: ``send`` is PRODUCER, ``process`` is CONSUMER and a batch
receive (``poll``/``getmany``/``consume <topic>``) is CLIENT — it is a call the application
makes, not the delivery of a message to it.
"""

from __future__ import annotations

import codecs
from collections.abc import Mapping
from typing import Any

__all__ = [
    "MAX_KEY_CHARS",
    "SYSTEM",
    "ProcessAttributes",
    "SendAttributes",
    "TOMBSTONE",
    "key_text",
    "receive_attributes",
    "record_attributes",
    "send_attributes",
]

SYSTEM = "kafka"
MAX_KEY_CHARS = 256  # a key is inbound data: bounded before it becomes an attribute


TOMBSTONE = "messaging.kafka.message.tombstone"


def key_text(key: Any) -> str | None:
    """``messaging.kafka.message.key``: a text, UTF-8 bytes or integer key as text, cut to
    `MAX_KEY_CHARS`; None for no key, bytes that are not UTF-8 (the conventions: a key with no
    canonical text form is left out, not written as replacement characters) or any other type
    (a deserialised object is not turned into text)."""
    if isinstance(key, bytes | bytearray | memoryview):
        # Only the bytes that can become MAX_KEY_CHARS characters are read; the incremental
        # decoder keeps a character cut at that boundary back instead of calling it invalid.
        try:
            key = codecs.getincrementaldecoder("utf-8")().decode(
                bytes(key[: MAX_KEY_CHARS * 4]), final=len(key) <= MAX_KEY_CHARS * 4
            )
        except UnicodeDecodeError:
            return None
    elif isinstance(key, int) and not isinstance(key, bool):
        key = str(key)
    if not isinstance(key, str) or not key:
        return None
    return key[:MAX_KEY_CHARS]


def send_attributes(
    topic: str,
    partition: int | None,
    key: Any = None,
    client: Mapping[str, Any] | None = None,
    tombstone: bool = False,
) -> dict[str, Any]:
    """Attributes of a ``send <topic>`` PRODUCER span (`tombstone`: the record has no value,
    ``messaging.kafka.message.tombstone``, which the conventions require when true)."""
    attrs: dict[str, Any] = {
        "messaging.system": SYSTEM,
        "messaging.operation.type": "send",
        "messaging.operation.name": "send",
        "messaging.destination.name": topic,
    }
    if isinstance(partition, int) and partition >= 0:
        attrs["messaging.destination.partition.id"] = str(partition)
    text = key_text(key)
    if text is not None:
        attrs["messaging.kafka.message.key"] = text
    if tombstone:
        attrs[TOMBSTONE] = True
    if client:
        attrs.update(client)
    return attrs


class SendAttributes:
    """One client's ``send <topic>`` span names and attributes, built once per topic (a record
    with a key or an explicit partition gets its own); at most `MAX_TOPICS` topics kept."""

    MAX_TOPICS = 256
    __slots__ = ("_topics", "client")

    def __init__(self, client: Mapping[str, Any] | None = None) -> None:
        self.client = client
        self._topics: dict[str, tuple[str, dict[str, Any]]] = {}

    def of(
        self, topic: str, partition: Any = None, key: Any = None, tombstone: bool = False
    ) -> tuple[str, dict[str, Any]]:
        """The span name and attributes for a send of `key` to `topic`/`partition` (the shared
        dict is only read: the SDK copies attributes into the span)."""
        found = self._topics.get(topic)
        if found is None:
            if len(self._topics) >= self.MAX_TOPICS:
                self._topics.clear()
            found = self._topics[topic] = (
                f"send {topic}",
                send_attributes(topic, None, None, self.client),
            )
        if partition is None and key is None and not tombstone:
            return found
        return found[0], send_attributes(topic, partition, key, self.client, tombstone)


def record_attributes(
    topic: str,
    partition: Any,
    offset: Any,
    key: Any = None,
    client: Mapping[str, Any] | None = None,
    operation: str = "process",
    tombstone: bool = False,
) -> dict[str, Any]:
    """Attributes of a ``process <topic>`` CONSUMER span for one consumed record (`tombstone`:
    it has no value)."""
    attrs: dict[str, Any] = {
        "messaging.system": SYSTEM,
        "messaging.operation.type": operation,
        "messaging.operation.name": operation,
        "messaging.destination.name": topic,
    }
    _add_record_fields(attrs, partition, offset, key, tombstone)
    if client:
        attrs.update(client)
    return attrs


def _add_record_fields(
    attrs: dict[str, Any], partition: Any, offset: Any, key: Any, tombstone: bool
) -> None:
    """What one consumed record adds to its process span's attributes."""
    if isinstance(partition, int):
        attrs["messaging.destination.partition.id"] = str(partition)
    if isinstance(offset, int):
        attrs["messaging.kafka.offset"] = offset
    if key is not None:
        text = key_text(key)
        if text is not None:
            attrs["messaging.kafka.message.key"] = text
    if tombstone:
        attrs[TOMBSTONE] = True


class ProcessAttributes:
    """One consumer's ``process <topic>`` span names and attributes: what is the same for every
    record of a topic (the conventions' constants, the client's, the group) is built once per
    topic, a record adds its partition, offset, key and tombstone; at most `MAX_TOPICS` topics
    kept."""

    MAX_TOPICS = 256
    __slots__ = ("_topics", "client")

    def __init__(self, client: Mapping[str, Any] | None = None) -> None:
        self.client = client
        self._topics: dict[str, tuple[str, dict[str, Any]]] = {}

    def of(
        self, topic: Any, partition: Any, offset: Any, key: Any = None, tombstone: bool = False
    ) -> tuple[str, dict[str, Any]]:
        """The span name and (a new dict of) attributes for one record: `record_attributes`."""
        if type(topic) is not str:
            attrs = record_attributes(
                topic, partition, offset, key, self.client, tombstone=tombstone
            )
            return f"process {topic}", attrs
        found = self._topics.get(topic)
        if found is None:
            if len(self._topics) >= self.MAX_TOPICS:
                self._topics.clear()
            found = self._topics[topic] = (
                f"process {topic}",
                record_attributes(topic, None, None, None, self.client),
            )
        attrs = found[1].copy()
        _add_record_fields(attrs, partition, offset, key, tombstone)
        return found[0], attrs


def receive_attributes(
    topics: list[str], count: int, operation: str, client: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Attributes of a batch receive CLIENT span (``operation``: the client's method name)."""
    attrs: dict[str, Any] = {
        "messaging.system": SYSTEM,
        "messaging.operation.type": "receive",
        "messaging.operation.name": operation,
        "messaging.batch.message_count": count,
    }
    if len(topics) == 1:
        attrs["messaging.destination.name"] = topics[0]
    if client:
        attrs.update(client)
    return attrs
