"""Public test helpers: capture finished spans from the real OTel SDK.

``with capture_spans() as exporter: ...; exporter.get_finished_spans()``. The global
TracerProvider can be set only once per process, so tracectx installs one SDK provider with a
switchboard processor and plugs exporters in and out of it.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

__all__ = ["capture_spans", "install_test_meter_provider", "install_test_provider", "plugged"]


class _Switchboard(SpanProcessor):
    """Forwards every ended span to the exporters and processors plugged in right now."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._targets: list[SpanExporter | SpanProcessor] = []

    def plug(self, target: SpanExporter | SpanProcessor) -> None:
        with self._lock:
            self._targets.append(target)

    def unplug(self, target: SpanExporter | SpanProcessor) -> None:
        with self._lock:
            self._targets.remove(target)

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        return None

    def on_end(self, span: ReadableSpan) -> None:
        with self._lock:
            targets = list(self._targets)
        for target in targets:
            if isinstance(target, SpanProcessor):
                target.on_end(span)
            else:
                target.export([span])

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        # Spans are handed on synchronously in on_end, so nothing waits here; the SDK's base
        # returned None before 1.39, which made the provider's flush report failure.
        return True


_switchboard = _Switchboard()
_install_lock = threading.Lock()


def install_test_provider(service_name: str = "tracectx-test") -> TracerProvider:
    """Install (once) an SDK TracerProvider feeding `capture_spans`; returns the provider."""
    with _install_lock:
        current = trace.get_tracer_provider()
        if isinstance(current, TracerProvider) and getattr(current, "_tracectx_test", False):
            return current
        provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
        provider.add_span_processor(_switchboard)
        provider._tracectx_test = True  # type: ignore[attr-defined]
        trace.set_tracer_provider(provider)
        return provider


@contextlib.contextmanager
def capture_spans() -> Iterator[InMemorySpanExporter]:
    """Collect every span that ends inside the block into an in-memory exporter."""
    install_test_provider()
    exporter = InMemorySpanExporter()
    _switchboard.plug(exporter)
    try:
        yield exporter
    finally:
        _switchboard.unplug(exporter)


@contextlib.contextmanager
def plugged(processor: SpanProcessor) -> Iterator[SpanProcessor]:
    """Feed `processor` (e.g. an `ErrorStreamProcessor`) every span ending inside the block."""
    install_test_provider()
    _switchboard.plug(processor)
    try:
        yield processor
    finally:
        _switchboard.unplug(processor)


_metric_reader: Any = None


def install_test_meter_provider() -> Any:
    """Install (once) an SDK MeterProvider with an in-memory reader; returns the reader
    (``reader.get_metrics_data()``)."""
    global _metric_reader
    from opentelemetry import metrics
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    with _install_lock:
        if _metric_reader is None:
            _metric_reader = InMemoryMetricReader()
            metrics.set_meter_provider(MeterProvider(metric_readers=[_metric_reader]))
        return _metric_reader
