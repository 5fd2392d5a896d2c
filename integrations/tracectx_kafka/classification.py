"""Kafka errors in the tracectx taxonomy: kafka-python's retriable errors are TRANSIENT."""

from __future__ import annotations

from kafka.errors import KafkaError

from tracectx import ErrorKind, register_predicate

__all__ = ["kafka_kind", "register"]


def kafka_kind(exc: BaseException) -> ErrorKind | None:
    """TRANSIENT for a retriable `KafkaError` (timeouts, leader moves, lost connections)."""
    if isinstance(exc, KafkaError) and exc.retriable:
        return ErrorKind.TRANSIENT
    return None


def register() -> None:
    """Install `kafka_kind` in the classifier (idempotent)."""
    register_predicate(kafka_kind)
