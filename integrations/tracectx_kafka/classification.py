"""Kafka errors in the tracectx taxonomy: each client's retriable errors are TRANSIENT.

`kafka_kind` is one classifier predicate for every client: each adapter module adds its
client's error base class and how to ask it whether it is retriable (`add_errors`), so
importing an adapter is enough and no client is imported here. A type the application
registers itself still wins.

The predicate is held by its owners: the wrappers (``TracedProducer``, ``trace_consumer`` …)
hold it for good, each instrumentor until its ``uninstrument()``; it is unregistered when
nobody holds it any more.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from tracectx import ErrorKind, register_predicate
from tracectx.classify import unregister_predicate

__all__ = ["INSTRUMENTOR", "WRAPPERS", "add_errors", "kafka_kind", "register", "unregister"]

WRAPPERS = "wrappers"
INSTRUMENTOR = "instrumentor"  # kafka-python's; the other instrumentors hold under their own name
_lock = threading.Lock()
_holders: set[str] = set()
_errors: dict[type[BaseException], Callable[[BaseException], bool]] = {}


def add_errors(base: type[BaseException], retriable: Callable[[BaseException], bool]) -> None:
    """Teach `kafka_kind` a client's errors: instances of `base` for which `retriable` is true
    are TRANSIENT."""
    with _lock:
        _errors[base] = retriable


def kafka_kind(exc: BaseException) -> ErrorKind | None:
    """TRANSIENT for a retriable client error (timeouts, leader moves, lost connections)."""
    for base, retriable in list(_errors.items()):
        if isinstance(exc, base):
            try:
                if retriable(exc):
                    return ErrorKind.TRANSIENT
            except Exception:  # a client error that cannot say: not classified
                return None
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
