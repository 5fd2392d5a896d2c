"""Traces assembled from spans that arrive piecemeal: held until quiet, as tail sampling does.

A trace is handed over for analysis once no span of it has arrived for `wait_s` (or it has been
open for `max_age_s`). It is then kept for a further `grace_s`: a span that arrives in that time
(late — a collector retried, a re-keying instance was replaced) re-opens it, so it is analysed
again with everything seen; only then is the trace *final*, and the records it came from may
be committed. After a crash or a rebalance the new owner therefore re-reads every record of
every trace that was not final, and assembles whole traces again. Spans of a trace that is final
already are counted and dropped (a fragment would report a wrong origin).

Bounded: at most `max_traces` open (the oldest handed over early, counted), `remember` kept
in grace (the oldest made final early) and `max_spans` spans per trace (the rest counted and
dropped: a runaway or hostile trace id cannot grow memory or one analysis without end). Pure
data structure: no Kafka and no clock of its own (times are passed in), so it is tested
directly.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable

from tracectx.viz.model import Span

__all__ = ["DEFAULT_GRACE_S", "AssemblerStats", "TraceAssembler", "TraceBuffer"]

# At least a consumer-group rebalance: when an instance dies, the spans it was re-keying reach
# their trace's owner only after its session times out (10 s) and the group re-forms.
DEFAULT_GRACE_S = 30.0


@dataclasses.dataclass
class TraceBuffer:
    """The spans of one trace so far, and the input positions they came from."""

    trace_id: str
    first_seen: float
    last_seen: float
    spans: list[Span] = dataclasses.field(default_factory=list)
    sources: set[Hashable] = dataclasses.field(default_factory=set)
    handed_over: float | None = None  # when it was last handed over for analysis


@dataclasses.dataclass
class AssemblerStats:
    spans: int = 0
    traces: int = 0  # handed over for analysis (a re-opened trace counts again)
    reopened: int = 0  # traces re-opened by a late span within the grace period
    late_spans: int = 0  # spans of final traces, dropped
    evicted: int = 0  # handed over early because of the cap
    capped: int = 0  # spans past a trace's `max_spans`, dropped


class TraceAssembler:
    """Collects spans per trace id; `due` hands over complete traces, `final` the settled ones."""

    def __init__(
        self,
        wait_s: float = 10.0,
        *,
        grace_s: float | None = None,
        max_age_s: float | None = None,
        max_traces: int = 100_000,
        remember: int = 100_000,
        max_spans: int = 100_000,
    ) -> None:
        self.wait_s = wait_s
        self.grace_s = grace_s if grace_s is not None else max(3 * wait_s, DEFAULT_GRACE_S)
        self.max_age_s = max_age_s if max_age_s is not None else 6 * wait_s
        self.max_traces = max_traces
        self.max_spans = max_spans
        self.remember = remember
        self.stats = AssemblerStats()
        self._open: OrderedDict[str, TraceBuffer] = OrderedDict()  # by last arrival
        self._grace: OrderedDict[str, TraceBuffer] = OrderedDict()  # by hand-over time
        self._final: OrderedDict[str, None] = OrderedDict()
        self._handed: list[TraceBuffer] = []
        self._settled: list[TraceBuffer] = []
        self._age_scan = 0.0

    def __len__(self) -> int:
        """Traces not final yet (open or in grace)."""
        return len(self._open) + len(self._grace)

    def __contains__(self, trace_id: object) -> bool:
        return trace_id in self._open or trace_id in self._grace

    def add(self, spans: Iterable[Span], now: float, source: Hashable = None) -> set[str]:
        """Add spans that arrived at `now` from `source` (e.g. a partition and offset); returns
        the trace ids that took spans (spans of final traces are counted, not taken)."""
        taken: set[str] = set()
        stats, final, open_ = self.stats, self._final, self._open
        last: TraceBuffer | None = None  # the buffer the previous span went to, while newest
        count = 0
        for span in spans:
            count += 1
            trace_id = span.trace_id
            if last is not None and trace_id == last.trace_id:
                # The same trace as the span before (a record holds a trace's spans together):
                # its buffer is the newest open one, already seen `now` from `source`.
                if len(last.spans) < self.max_spans:
                    last.spans.append(span)
                else:
                    stats.capped += 1
                continue
            if trace_id in final:
                stats.late_spans += 1
                last = None
                continue
            taken.add(trace_id)
            buf = open_.get(trace_id)
            if buf is None:
                buf = self._grace.pop(trace_id, None)
                if buf is not None:  # late, within grace: analyse again with it
                    stats.reopened += 1
                else:
                    buf = TraceBuffer(trace_id, now, now)
                open_[trace_id] = buf
                last = buf
                if len(open_) > self.max_traces:
                    stats.evicted += 1
                    self._hand_over(next(iter(open_)), now)
                    last = None  # it may be the one handed over (a cap of 0)
            else:
                open_.move_to_end(trace_id)
                last = buf
            buf.last_seen = now
            if len(buf.spans) < self.max_spans:
                buf.spans.append(span)
            else:  # a trace past its cap (hostile, or runaway): memory and analysis stay bounded
                stats.capped += 1
            if source is not None:
                buf.sources.add(source)
        stats.spans += count
        return taken

    def due(self, now: float) -> list[TraceBuffer]:
        """Traces to analyse at `now`: quiet for `wait_s`, open longer than `max_age_s`, or
        handed over early by the cap."""
        while self._open:  # ordered by last arrival, so the quiet ones are a prefix
            trace_id, buf = next(iter(self._open.items()))
            if now - buf.last_seen < self.wait_s:
                break
            self._hand_over(trace_id, now)
        if now - self._age_scan >= self.wait_s:  # busy traces past max_age: a full scan, rarely
            self._age_scan = now
            for trace_id in [
                t for t, b in self._open.items() if now - b.first_seen >= self.max_age_s
            ]:
                self._hand_over(trace_id, now)
        out, self._handed = self._handed, []
        return out

    def final(self, now: float) -> list[TraceBuffer]:
        """Traces whose grace period ended by `now` (or pushed out by `remember`): their input
        records may be committed."""
        while self._grace:
            trace_id, buf = next(iter(self._grace.items()))
            if buf.handed_over is not None and now - buf.handed_over < self.grace_s:
                break
            self._settle(trace_id)
        out, self._settled = self._settled, []
        return out

    def drop(self, keep: Callable[[TraceBuffer], bool]) -> list[TraceBuffer]:
        """Forget traces not final for which `keep(buffer)` is false (partitions taken away in a
        rebalance: their new owner reads them again from the last committed offset)."""
        dropped = []
        for table in (self._open, self._grace):
            for buf in [b for b in table.values() if not keep(b)]:
                del table[buf.trace_id]
                dropped.append(buf)
        return dropped

    def _hand_over(self, trace_id: str, now: float) -> None:
        buf = self._open.pop(trace_id)
        buf.handed_over = now
        self.stats.traces += 1
        self._handed.append(buf)
        self._grace[trace_id] = buf
        if len(self._grace) > self.remember:
            self._settle(next(iter(self._grace)))

    def _settle(self, trace_id: str) -> None:
        self._settled.append(self._grace.pop(trace_id))
        self._final[trace_id] = None
        if len(self._final) > self.remember:
            self._final.popitem(last=False)
