"""tracectx's own counters, on the OTel metrics API (no-op until the app sets a MeterProvider).

`note_rejected` counts inbound propagation data that was refused (malformed or duplicated
traceparent, non-UTF-8 headers, oversized baggage, corrupt error envelopes): the hop still goes
ahead, with a fresh root. The ``reason`` label comes from the fixed `REASONS` set — never from
the inbound bytes — so a hostile sender cannot grow the label set, and warnings are rate-limited
(one per transport and reason per `WARN_INTERVAL_S`; the rest at DEBUG).
"""

from __future__ import annotations

import logging
import threading
import time

from opentelemetry import metrics

__all__ = [
    "ERRORS_COUNTER",
    "REASONS",
    "REJECTED_COUNTER",
    "TRANSPORTS",
    "count_error",
    "note_rejected",
]

REJECTED_COUNTER = "tracectx.propagation.rejected"
#: Why inbound propagation data was refused: the only values the ``reason`` label takes.
REASONS: frozenset[str] = frozenset(
    {
        "malformed_traceparent",
        "duplicate_header",
        "null_header",
        "non_utf8_header",
        "wrong_type_header",
        "oversized_header",
        "oversized_baggage",
        "malformed_baggage",
        "corrupt_envelope",
        "other",
    }
)
#: Where it came in: the only values the ``messaging.system`` label takes (else ``other``).
TRANSPORTS: frozenset[str] = frozenset({"kafka", "celery", "http", "process", "other"})
WARN_INTERVAL_S = 60.0
_log = logging.getLogger("tracectx")
_lock = threading.Lock()
_last_warned: dict[tuple[str, str], float] = {}  # bounded: |TRANSPORTS| x |REASONS| keys
_counters: dict[str, metrics.Counter] = {}


def _counter(name: str, unit: str, description: str) -> metrics.Counter:
    """The named counter, created on first use (the app may set its MeterProvider late)."""
    found = _counters.get(name)
    if found is None:
        found = _counters[name] = metrics.get_meter("tracectx").create_counter(
            name, unit=unit, description=description
        )
    return found


def note_rejected(transport: str, reason: str, detail: str = "") -> None:
    """Count one refused inbound item on `transport` (``kafka``, ``celery``, ``http``).

    `reason` must be one of `REASONS` (anything else is counted as ``other``); `detail` is code
    text (a header name, an exception class) for the log line only, cut to 64 characters.
    """
    reason = reason if reason in REASONS else "other"
    transport = transport if transport in TRANSPORTS else "other"
    counter = _counter(REJECTED_COUNTER, "{header}", "Inbound propagation data refused")
    counter.add(1, {"messaging.system": transport, "reason": reason})
    now = time.monotonic()
    with _lock:
        last = _last_warned.get((transport, reason))
        warn = last is None or now - last >= WARN_INTERVAL_S
        if warn:
            _last_warned[(transport, reason)] = now
    _log.log(
        logging.WARNING if warn else logging.DEBUG,
        "tracectx: %s: refused inbound data (%s%s); continuing without it",
        transport,
        reason,
        f": {detail[:64]!r}" if detail else "",
    )


ERRORS_COUNTER = "tracectx.errors"


def count_error(kind: str, resource: str, error_type: str) -> None:
    """Count one error where it was born, by kind, resource (endpoint/task/topic) and type."""
    counter = _counter(ERRORS_COUNTER, "{error}", "Errors by kind, resource and type")
    counter.add(1, {"error.kind": kind, "tracectx.resource": resource, "error.type": error_type})
