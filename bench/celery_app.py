"""The Celery app of bench_celery, imported by the benchmark and by its worker processes.

``BENCH_MODE`` picks the worker's instrumentation: plain, tracectx or otel.
"""

from __future__ import annotations

import os

from celery import Celery
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult


class Discard(SpanExporter):
    def export(self, spans: object) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def make_app(broker: str) -> Celery:
    app = Celery("bench", broker=broker, backend=broker, set_as_current=False)
    app.conf.update(broker_connection_retry_on_startup=True, worker_hijack_root_logger=False)

    @app.task(name="b.echo", shared=False)
    def echo(value: int) -> int:
        return value

    return app


def instrument(mode: str) -> None:
    """Set up the SDK (spans discarded) and the variant's instrumentation in this process."""
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Discard(), max_queue_size=65536))
    trace.set_tracer_provider(provider)
    if mode == "tracectx":
        import tracectx_celery

        tracectx_celery.instrument()
    elif mode == "otel":
        from opentelemetry.instrumentation.celery import CeleryInstrumentor

        CeleryInstrumentor().instrument()


if "BENCH_BROKER" in os.environ:  # a worker process
    instrument(os.environ["BENCH_MODE"])
    app = make_app(os.environ["BENCH_BROKER"])
