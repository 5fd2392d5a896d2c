"""Traces assembled from spans that arrive piecemeal: held until quiet, as tail sampling does.

A trace is complete when no span of it has arrived for `wait_s` (or it has been open for
`max_age_s`). At most `max_traces` are held: past that the oldest is handed over early and
counted (bounded memory whatever the input). Spans of a trace handed over recently (the last
`remember` trace ids) are *late*: counted and dropped, since analysing a fragment would report
a wrong origin. Pure data structure: no Kafka, no clock of its own (times are passed in), so
it is tested directly.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable

from tracectx.viz.model import Span

__all__ = ["AssemblerStats", "TraceAssembler", "TraceBuffer"]


@dataclasses.dataclass
class TraceBuffer:
    """The spans of one trace so far, and the input positions they came from."""

    trace_id: str
    first_seen: float
    last_seen: float
    spans: list[Span] = dataclasses.field(default_factory=list)
    sources: set[Hashable] = dataclasses.field(default_factory=set)


@dataclasses.dataclass
class AssemblerStats:
    spans: int = 0
    traces: int = 0  # handed over
    late_spans: int = 0
    evicted: int = 0  # handed over early because of the cap


class TraceAssembler:
    """Collects spans per trace id; `due` hands over the traces that are complete."""

    def __init__(
        self,
        wait_s: float = 10.0,
        *,
        max_age_s: float | None = None,
        max_traces: int = 100_000,
        remember: int = 100_000,
    ) -> None:
        self.wait_s = wait_s
        self.max_age_s = max_age_s if max_age_s is not None else 6 * wait_s
        self.max_traces = max_traces
        self.stats = AssemblerStats()
        self._open: OrderedDict[str, TraceBuffer] = OrderedDict()  # by last arrival
        self._done: OrderedDict[str, None] = OrderedDict()
        self._remember = remember
        self._evicted: list[TraceBuffer] = []
        self._age_scan = 0.0

    def __len__(self) -> int:
        return len(self._open)

    def __contains__(self, trace_id: object) -> bool:
        return trace_id in self._open

    def add(self, spans: Iterable[Span], now: float, source: Hashable = None) -> set[str]:
        """Add spans that arrived at `now` from `source` (e.g. a partition and offset); returns
        the trace ids that took spans (late spans are counted, not taken)."""
        taken: set[str] = set()
        for span in spans:
            self.stats.spans += 1
            if span.trace_id in self._done:
                self.stats.late_spans += 1
                continue
            taken.add(span.trace_id)
            buf = self._open.get(span.trace_id)
            if buf is None:
                buf = self._open[span.trace_id] = TraceBuffer(span.trace_id, now, now)
                if len(self._open) > self.max_traces:
                    self.stats.evicted += 1
                    self._evicted.append(self._finish(next(iter(self._open))))
            else:
                self._open.move_to_end(span.trace_id)
                buf.last_seen = now
            buf.spans.append(span)
            if source is not None:
                buf.sources.add(source)
        return taken

    def due(self, now: float) -> list[TraceBuffer]:
        """The traces complete at `now` (quiet for `wait_s`, or open longer than `max_age_s`),
        and any handed over early by the cap."""
        out = self._take_evicted()
        # Open traces are ordered by last arrival, so the quiet ones are a prefix.
        while self._open:
            trace_id, buf = next(iter(self._open.items()))
            if now - buf.last_seen < self.wait_s:
                break
            out.append(self._finish(trace_id))
        if now - self._age_scan >= self.wait_s:  # busy traces past max_age: a full scan, rarely
            self._age_scan = now
            old = [t for t, b in self._open.items() if now - b.first_seen >= self.max_age_s]
            out.extend(self._finish(t) for t in old)
        return out

    def drain(self) -> list[TraceBuffer]:
        """Everything still open (shutting down with a final analysis)."""
        return [self._finish(t) for t in list(self._open)] + self._take_evicted()

    def drop(self, keep: Callable[[TraceBuffer], bool]) -> list[TraceBuffer]:
        """Forget open traces for which `keep(buffer)` is false (partitions taken away in a
        rebalance: their new owner reads them again from the last committed offset)."""
        dropped = [b for b in self._open.values() if not keep(b)]
        for buf in dropped:
            del self._open[buf.trace_id]
        return dropped

    def _take_evicted(self) -> list[TraceBuffer]:
        out, self._evicted = self._evicted, []
        return out

    def _finish(self, trace_id: str) -> TraceBuffer:
        buf = self._open.pop(trace_id)
        self.stats.traces += 1
        self._done[trace_id] = None
        if len(self._done) > self._remember:
            self._done.popitem(last=False)
        return buf
