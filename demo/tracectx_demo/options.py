"""What the demo runs against: embedded defaults, or external Kafka/Redis/Jaeger."""

from __future__ import annotations

import dataclasses
import os

__all__ = ["DemoOptions"]


@dataclasses.dataclass(frozen=True)
class DemoOptions:
    """Args:
    out: folder for the HTML page, the OTLP JSON and the Mermaid graph.
    bootstrap_servers: external Kafka (default: an embedded tansu broker).
    broker_url: external Redis for Celery's broker and results (default: in-memory).
    otlp_endpoint: OTLP/HTTP endpoint to also send spans to (Jaeger's is :4318).
    jaeger_ui: Jaeger UI base URL, for the deep links printed at the end.
    """

    out: str = "tracectx-demo"
    bootstrap_servers: str | None = None
    broker_url: str | None = None
    otlp_endpoint: str | None = None
    jaeger_ui: str | None = None
    alertmanager: str | None = None

    @classmethod
    def from_env(cls, **given: str | None) -> DemoOptions:
        """Command-line values, else the environment (``TRACECTX_DEMO_*``,
        ``OTEL_EXPORTER_OTLP_ENDPOINT``, ``TRACECTX_JAEGER_UI``, ``TRACECTX_ALERTMANAGER_URL``)."""
        env = os.environ
        pick = {
            "out": given.get("out") or env.get("TRACECTX_DEMO_OUT") or cls.out,
            "bootstrap_servers": given.get("bootstrap_servers")
            or env.get("TRACECTX_DEMO_BOOTSTRAP_SERVERS"),
            "broker_url": given.get("broker_url") or env.get("TRACECTX_DEMO_BROKER_URL"),
            "otlp_endpoint": env.get("OTEL_EXPORTER_OTLP_ENDPOINT"),
            "jaeger_ui": given.get("jaeger") or env.get("TRACECTX_JAEGER_UI"),
            "alertmanager": given.get("alertmanager") or env.get("TRACECTX_ALERTMANAGER_URL"),
        }
        if pick["jaeger_ui"] and not pick["otlp_endpoint"]:
            pick["otlp_endpoint"] = "http://localhost:4318"
        if pick["otlp_endpoint"] and not pick["jaeger_ui"]:
            pick["jaeger_ui"] = "http://localhost:16686"
        return cls(**pick)  # type: ignore[arg-type]
