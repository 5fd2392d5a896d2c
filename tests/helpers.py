"""Small assertions on finished spans shared by the test modules."""

from __future__ import annotations

import os
import subprocess
import sys
import time
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


#: How much longer than its CPU budget a block may take by the wall clock (`Cost`).
WALL_FACTOR = 10.0


class Cost:
    """What a block cost since this was made: CPU time of the calling thread, and wall-clock time.

    Time budgets that catch a slow algorithm (a quadratic reader, a validation that builds
    everything first) are CPU time: on a loaded 2-core CI machine a block of 0.2 s of CPU was
    measured at 0.99 s by the wall clock, the rest spent waiting for a core. A block that waits
    (a socket, a sleep, a timeout) costs no CPU, so the wall clock still bounds it, `WALL_FACTOR`
    times more loosely.
    """

    def __init__(self) -> None:
        self._start = time.thread_time(), time.perf_counter()
        self._end: tuple[float, float] | None = None

    def stop(self) -> None:
        """End the measure here (else it runs until `spent` or `assert_within`)."""
        self._end = time.thread_time(), time.perf_counter()

    def spent(self) -> tuple[float, float]:
        """(CPU seconds of this thread, wall-clock seconds) up to `stop`, or so far."""
        end = self._end or (time.thread_time(), time.perf_counter())
        return end[0] - self._start[0], end[1] - self._start[1]

    def assert_within(self, cpu_s: float, wall_s: float | None = None) -> None:
        """At most `cpu_s` of CPU and `wall_s` (default ``WALL_FACTOR * cpu_s``) of wall clock."""
        cpu, wall = self.spent()
        wall_s = WALL_FACTOR * cpu_s if wall_s is None else wall_s
        assert cpu < cpu_s, f"took {cpu:.3f}s of CPU ({wall:.3f}s wall clock)"
        assert wall < wall_s, f"took {wall:.3f}s by the wall clock ({cpu:.3f}s of CPU)"


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
