"""tracectx stream: error analysis and alerting as a Kafka consumer group over the span stream.

Run where the OTel Collector (or Jaeger v2, or rotel) already writes every span to Kafka:
``tracectx stream --bootstrap-servers kafka:9092 --topic otlp_spans``. Instances with the same
``--group`` share the partitions; each assembles the traces it owns, runs the same analysis as
``tracectx graph`` and emits every error path (origin → propagators → absorber, or escape) to
the paths topic, the rolling flow graph, alert rules and, optionally, back over OTLP as small
traces that Jaeger shows as propagation graphs.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tracectx_stream.paths import FlowWindow, path_records
    from tracectx_stream.settings import StreamSettings
    from tracectx_stream.supervise import StageFailed
    from tracectx_stream.worker import PathHandler, SpanStream, Stage

__all__ = [
    "FlowWindow",
    "PathHandler",
    "SpanStream",
    "Stage",
    "StageFailed",
    "StreamSettings",
    "build_stream",
    "path_records",
]

_HOMES = {
    "FlowWindow": "tracectx_stream.paths",
    "path_records": "tracectx_stream.paths",
    "StreamSettings": "tracectx_stream.settings",
    "StageFailed": "tracectx_stream.supervise",
    "PathHandler": "tracectx_stream.worker",
    "SpanStream": "tracectx_stream.worker",
    "Stage": "tracectx_stream.worker",
}


def __getattr__(name: str) -> Any:
    """Imported on first use (PEP 562): the ``tracectx`` CLI imports this package to register
    ``stream`` on every run, and the worker imports the Kafka client and the analysis."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(home), name)


def build_stream(
    settings: StreamSettings,
    *,
    otlp_endpoint: str | None = None,
    alerts: Path | None = None,
    handlers: list[PathHandler] | None = None,
) -> SpanStream:
    """A `SpanStream` with the optional outputs wired: OTLP write-back, alert rules."""
    out = list(handlers or [])
    writer = None
    if otlp_endpoint:
        from tracectx_stream.writeback import PathWriter

        writer = PathWriter.over_http(otlp_endpoint)
        out.append(writer)
    stages: list[Stage] = []
    stage = None
    if alerts is not None:
        from tracectx_stream.alerting import alert_handler

        stage = alert_handler(alerts, settings)
        out.append(stage)
        stages.append(stage)
    from tracectx_stream.worker import SpanStream

    stream = SpanStream(settings, out, stages=stages)
    for output in (stage, writer):
        if output is not None:
            output.stats = stream.stats  # its counters show in GET /stats and the metrics
    return stream
