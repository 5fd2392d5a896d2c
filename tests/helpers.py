"""Small assertions on finished spans shared by the test modules."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


def by_name(exporter: InMemorySpanExporter, name: str) -> ReadableSpan:
    """The one finished span called `name`."""
    found = [s for s in exporter.get_finished_spans() if s.name == name]
    assert len(found) == 1, f"expected one span {name!r}, got {[s.name for s in found]}"
    return found[0]


def all_named(exporter: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.name == name]


def hex_trace(span: ReadableSpan) -> str:
    return format(span.context.trace_id, "032x")


def hex_span(span: ReadableSpan) -> str:
    return format(span.context.span_id, "016x")


def current_ids() -> tuple[str, str]:
    """(trace id, span id) of the current span, hex; zeros outside any span."""
    ctx = trace.get_current_span().get_span_context()
    return format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")


def run_instrumented(code: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run `code` under ``opentelemetry-instrument`` (every tracectx entry point applied; OTel's
    own threading/celery/kafka instrumentations disabled, as the README says), no exporters."""
    env = {
        **os.environ,
        "OTEL_TRACES_EXPORTER": "none",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
        "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "kafka,celery,threading",
    }
    bindir = Path(sys.executable).parent
    return subprocess.run(
        [str(bindir / "opentelemetry-instrument"), sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
