"""The demo's OTel SDK: spans kept in memory (for the graph), written as OTLP JSON, and sent
over OTLP/HTTP when an endpoint is configured; alerts printed as they fire."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tracectx.alerting import Alert, AlertEngine, AlertmanagerSink, Rule, install
from tracectx.file_exporter import OTLPJsonFileExporter
from tracectx.safetext import escape_control

__all__ = ["Telemetry"]


class Telemetry:
    """Set up once per process (the OTel provider is global)."""

    def __init__(
        self,
        otlp_path: Path,
        otlp_endpoint: str | None,
        alertmanager: str | None = None,
        jaeger_ui: str | None = None,
    ) -> None:
        self.memory = InMemorySpanExporter()
        self.alerts: list[Alert] = []
        self.provider = TracerProvider(resource=Resource.create({"service.name": "shop"}))
        self.provider.add_span_processor(SimpleSpanProcessor(self.memory))
        self.provider.add_span_processor(SimpleSpanProcessor(OTLPJsonFileExporter(otlp_path)))
        if otlp_endpoint:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            endpoint = otlp_endpoint.rstrip("/") + "/v1/traces"
            self.provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint)))
        trace.set_tracer_provider(self.provider)
        self.engine = AlertEngine(
            [
                Rule(
                    name="payment-business-burst",
                    resource="*",
                    kinds=["BUSINESS"],
                    threshold=1,
                    window=300,
                    group_by=["account_id"],
                )
            ],
            sinks={"alertmanager": AlertmanagerSink(alertmanager)} if alertmanager else {},
            default_actions=[self._print_alert, *(["alertmanager"] if alertmanager else [])],
            jaeger_template=jaeger_ui,
        )
        install(self.engine, provider=self.provider, metrics=False)
        for noisy in ("kafka", "celery", "kombu", "tracectx.alerts", "tracectx.http"):
            logging.getLogger(noisy).setLevel(logging.CRITICAL + 1)  # the demo prints its own

    def _print_alert(self, alert: Alert) -> None:
        if alert.resolved_at is None:
            self.alerts.append(alert)
            line = f"! alert {alert.name}: {alert.annotations()['summary']}"
            # one write (alerts print from delivery threads); the summary quotes error text
            sys.stdout.write(f"  {escape_control(line)}\n")
            sys.stdout.flush()

    def close(self) -> None:
        self.engine.drain(5)
        sink = self.engine.sinks.get("alertmanager")
        if isinstance(sink, AlertmanagerSink):
            sink.dispatcher.flush(10)
        self.engine.close()
        self.provider.force_flush()
        self.provider.shutdown()
