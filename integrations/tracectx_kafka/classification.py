"""Kafka errors in the tracectx taxonomy: kafka-python's retriable errors are TRANSIENT.

`kafka_kind` is a classifier predicate, so a type the application registers itself still wins.
It is held by its owners: the wrappers (`TracedProducer`, `trace_consumer` …) hold it for good,
the instrumentor until ``uninstrument()``; it is unregistered when nobody holds it any more.
"""

from __future__ import annotations

import threading

from kafka.errors import KafkaError

from tracectx import ErrorKind, register_predicate
from tracectx.classify import unregister_predicate

__all__ = ["INSTRUMENTOR", "WRAPPERS", "kafka_kind", "register", "unregister"]

WRAPPERS = "wrappers"
INSTRUMENTOR = "instrumentor"
_lock = threading.Lock()
_holders: set[str] = set()


def kafka_kind(exc: BaseException) -> ErrorKind | None:
    """TRANSIENT for a retriable `KafkaError` (timeouts, leader moves, lost connections)."""
    if isinstance(exc, KafkaError) and exc.retriable:
        return ErrorKind.TRANSIENT
    return None


def register(holder: str = WRAPPERS) -> None:
    """Install `kafka_kind` in the classifier on behalf of `holder` (idempotent)."""
    with _lock:
        _holders.add(holder)
        register_predicate(kafka_kind)


def unregister(holder: str = INSTRUMENTOR) -> None:
    """Drop `holder`'s hold; `kafka_kind` leaves the classifier when no holder is left."""
    with _lock:
        _holders.discard(holder)
        if not _holders:
            unregister_predicate(kafka_kind)
