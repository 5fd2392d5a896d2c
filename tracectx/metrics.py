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
_counters: dict[str, metrics.Counter] = {}


def _counter(name: str, unit: str, description: str) -> metrics.Counter:
    """The named counter, created on first use (the app may set its MeterProvider late)."""
    found = _counters.get(name)
    if found is None:
        found = _counters[name] = metrics.get_meter("tracectx").create_counter(
            name, unit=unit, description=description
        )
    return found


def note_rejected(transport: str, reason: str) -> None:
    """Count one refused inbound header on `transport` (``kafka``, ``celery``, ``http``)."""
    counter = _counter(REJECTED_COUNTER, "{header}", "Inbound propagation data refused")
    counter.add(1, {"messaging.system": transport, "reason": reason})
    with _lock:
        first = (transport, reason) not in _warned
        _warned.add((transport, reason))
    level = logging.WARNING if first else logging.DEBUG
    _log.log(
        level, "tracectx: %s: refused inbound %s; continuing with a fresh root", transport, reason
    )


ERRORS_COUNTER = "tracectx.errors"


def count_error(kind: str, resource: str, error_type: str) -> None:
    """Count one error where it was born, by kind, resource (endpoint/task/topic) and type."""
    counter = _counter(ERRORS_COUNTER, "{error}", "Errors by kind, resource and type")
    counter.add(1, {"error.kind": kind, "tracectx.resource": resource, "error.type": error_type})
