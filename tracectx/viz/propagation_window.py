"""A rolling window of recent traces checked together for lost context, for long-running
consumers of traces (``tracectx stream``'s ``/stats`` and flow page can show its health table).

A lost hop shows only across traces (the caller's and the root the callee started), so the
check needs the recent traces together: `PropagationWindow` keeps the spans of the traces
completed in the last `seconds` (by the spans' own clock) and at most `max_spans` spans (the
traces added first go first; a trace larger than that keeps its first `max_spans`); a trace
added again (a fuller copy) replaces its earlier copy. `report` runs `check_propagation` over
the window, cached until the window changes.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from tracectx.viz.model import Span
from tracectx.viz.propagation_check import PropagationReport, check_propagation

__all__ = ["PropagationWindow"]


class PropagationWindow:
    """The spans of recently completed traces, bounded in age and count, checked on demand."""

    def __init__(self, seconds: float = 300.0, max_spans: int = 100_000) -> None:
        if seconds <= 0 or max_spans <= 0:
            raise ValueError("seconds and max_spans must be positive")
        self.seconds = seconds
        self.max_spans = max_spans
        self._traces: OrderedDict[str, tuple[int, list[Span]]] = OrderedDict()
        self._count = 0
        self._newest = 0
        self._report: PropagationReport | None = None

    def __len__(self) -> int:
        """Spans held."""
        return self._count

    def add(self, spans: Sequence[Span]) -> None:
        """Hold one trace's spans (all of one trace id; a trace added again is replaced)."""
        if not spans:
            return
        trace_id = spans[0].trace_id
        end = max(s.end_ns for s in spans)
        old = self._traces.pop(trace_id, None)
        if old is not None:
            self._count -= len(old[1])
        kept = list(spans[: self.max_spans])
        self._traces[trace_id] = (end, kept)
        self._count += len(kept)
        self._newest = max(self._newest, end)
        self._evict()
        self._report = None

    def _evict(self) -> None:
        oldest_kept = self._newest - int(self.seconds * 1e9)
        while self._traces:
            trace_id, (end, spans) = next(iter(self._traces.items()))
            if self._count <= self.max_spans and end >= oldest_kept:
                break
            del self._traces[trace_id]
            self._count -= len(spans)

    def snapshot(self) -> tuple[list[Span], int]:
        """The spans held and the newest end time (ns): what `report` checks, for a caller that
        checks them on another thread (copy under its lock, check outside it)."""
        return [s for _, trace_spans in self._traces.values() for s in trace_spans], self._newest

    def report(self) -> PropagationReport:
        """`check_propagation` over the window (cached until the next `add`)."""
        if self._report is None:
            spans, newest = self.snapshot()
            self._report = check_propagation(spans, now_ns=newest)
        return self._report

    def health(self) -> list[dict[str, Any]]:
        """The health table as JSON-ready rows (for ``/stats``)."""
        from tracectx.viz.renderers.propagation import propagation_data

        rows: list[dict[str, Any]] = propagation_data(self.report())["health"]
        return rows
