"""Messaging semantic-convention attributes for Kafka spans (current OTel names)."""

from __future__ import annotations

from typing import Any

__all__ = ["record_attributes", "send_attributes"]

SYSTEM = "kafka"


def send_attributes(topic: str, partition: int | None) -> dict[str, Any]:
    """Attributes of a ``send <topic>`` PRODUCER span."""
    attrs: dict[str, Any] = {
        "messaging.system": SYSTEM,
        "messaging.operation.type": "send",
        "messaging.operation.name": "send",
        "messaging.destination.name": topic,
    }
    if partition is not None:
        attrs["messaging.destination.partition.id"] = str(partition)
    return attrs


def record_attributes(record: Any, group: str | None, operation: str) -> dict[str, Any]:
    """Attributes of a ``process <topic>`` span for one consumed record."""
    attrs: dict[str, Any] = {
        "messaging.system": SYSTEM,
        "messaging.operation.type": operation,
        "messaging.operation.name": operation,
        "messaging.destination.name": record.topic,
        "messaging.destination.partition.id": str(record.partition),
        "messaging.kafka.offset": record.offset,
    }
    if group:
        attrs["messaging.consumer.group.name"] = group
    return attrs
