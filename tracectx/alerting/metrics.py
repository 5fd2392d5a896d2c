"""Error counters off the error stream: one count per error, where it was born."""

from __future__ import annotations

from tracectx import semconv as sc
from tracectx.alerting.events import ErrorEvent
from tracectx.metrics import count_error

__all__ = ["count_errors"]


def count_errors(event: ErrorEvent) -> None:
    """An `ErrorStreamProcessor` subscriber feeding ``tracectx.errors``."""
    if event.role == sc.ROLE_ORIGIN:
        count_error(event.kind, event.resource, event.error_type)
