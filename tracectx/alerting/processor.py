"""The error stream: one `SpanProcessor` turns ended spans into `ErrorEvent`s for subscribers
(the alert engine, the error metrics). Spans without an error cost one attribute lookup."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from tracectx import semconv as sc
from tracectx.alerting.events import ErrorEvent, event_from_span

__all__ = ["ErrorStreamProcessor"]

_log = logging.getLogger("tracectx.alerting")
Subscriber = Callable[[ErrorEvent], Any]


class ErrorStreamProcessor(SpanProcessor):
    """Calls each subscriber with the `ErrorEvent` of every ended span that carries an error.

    Subscribers run on the thread that ended the span: hand work off (``engine.submit``).
    A failing subscriber is logged and skipped, never raised into the app.
    """

    def __init__(self, subscribers: Iterable[Subscriber] = ()) -> None:
        self.subscribers = list(subscribers)

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        attrs = span.attributes
        if not attrs or sc.ATTR_ID not in attrs:
            return
        try:
            event = event_from_span(span)
        except Exception:
            _log.warning("tracectx: could not read an error span", exc_info=True)
            return
        if event is None:
            return
        for subscriber in self.subscribers:
            try:
                subscriber(event)
            except Exception:
                _log.warning("tracectx: error subscriber %r failed", subscriber, exc_info=True)

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
