"""tracectx's own counters, on the OTel metrics API (no-op until the app sets a MeterProvider).

`note_rejected` counts inbound propagation data that was refused (malformed or duplicated
traceparent, non-UTF-8 headers, corrupt error envelopes): the hop still goes ahead, with a fresh
root, and the first rejection of each reason is logged at WARNING (later ones at DEBUG).
"""

from __future__ import annotations

import logging
import threading

from opentelemetry import metrics

__all__ = ["ERRORS_COUNTER", "REJECTED_COUNTER", "count_error", "note_rejected"]

REJECTED_COUNTER = "tracectx.propagation.rejected"
_log = logging.getLogger("tracectx")
_lock = threading.Lock()
_warned: set[tuple[str, str]] = set()
_counter: metrics.Counter | None = None


def _rejected() -> metrics.Counter:
    global _counter
    if _counter is None:
        _counter = metrics.get_meter("tracectx").create_counter(
            REJECTED_COUNTER, unit="{header}", description="Inbound propagation data refused"
        )
    return _counter


def note_rejected(transport: str, reason: str) -> None:
    """Count one refused inbound header on `transport` (``kafka``, ``celery``, ``http``)."""
    _rejected().add(1, {"messaging.system": transport, "reason": reason})
    with _lock:
        first = (transport, reason) not in _warned
        _warned.add((transport, reason))
    level = logging.WARNING if first else logging.DEBUG
    _log.log(
        level, "tracectx: %s: refused inbound %s; continuing with a fresh root", transport, reason
    )


ERRORS_COUNTER = "tracectx.errors"
_errors: metrics.Counter | None = None


def count_error(kind: str, resource: str, error_type: str) -> None:
    """Count one error where it was born, by kind, resource (endpoint/task/topic) and type."""
    global _errors
    if _errors is None:
        _errors = metrics.get_meter("tracectx").create_counter(
            ERRORS_COUNTER, unit="{error}", description="Errors by kind, resource and type"
        )
    _errors.add(1, {"error.kind": kind, "tracectx.resource": resource, "error.type": error_type})
