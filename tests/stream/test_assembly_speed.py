"""The assembler's shortcut for a span of the same trace as the span before it keeps exactly
what the plain per-span bookkeeping keeps (caps of 0 and 1 included)."""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tracectx.viz.model import Span
from tracectx_stream.assembler import TraceAssembler, TraceBuffer


class PlainAssembler(TraceAssembler):
    """`add` as it was before the shortcut: every span looked up on its own."""

    def add(self, spans: Iterable[Span], now: float, source: Hashable = None) -> set[str]:
        taken: set[str] = set()
        for span in spans:
            self.stats.spans += 1
            trace_id = span.trace_id
            if trace_id in self._final:
                self.stats.late_spans += 1
                continue
            taken.add(trace_id)
            buf = self._open.get(trace_id)
            if buf is None:
                buf = self._grace.pop(trace_id, None)
                if buf is not None:
                    self.stats.reopened += 1
                else:
                    buf = TraceBuffer(trace_id, now, now)
                self._open[trace_id] = buf
                if len(self._open) > self.max_traces:
                    self.stats.evicted += 1
                    self._hand_over(next(iter(self._open)), now)
            else:
                self._open.move_to_end(trace_id)
            buf.last_seen = now
            buf.spans.append(span)
            if source is not None:
                buf.sources.add(source)
        return taken


def _state(asm: TraceAssembler) -> Any:
    def bufs(table: Any) -> list[Any]:
        return [
            (b.trace_id, b.first_seen, b.last_seen, [s.span_id for s in b.spans], b.sources)
            for b in table.values()
        ]

    return (bufs(asm._open), bufs(asm._grace), list(asm._final), asm.stats, len(asm))


batches = st.lists(
    st.tuples(
        st.lists(st.sampled_from("abc"), max_size=6),  # trace ids, often repeated in a row
        st.sampled_from([None, "p0", "p1"]),
        st.integers(0, 3),  # time step
    ),
    max_size=8,
)


@settings(max_examples=200, deadline=None)
@given(batches, st.integers(0, 3), st.integers(0, 3))
def test_same_trace_shortcut_keeps_what_the_plain_add_keeps(
    steps: list[tuple[list[str], str | None, int]], max_traces: int, remember: int
) -> None:
    fast = TraceAssembler(wait_s=2, grace_s=1, max_traces=max_traces, remember=remember)
    plain = PlainAssembler(wait_s=2, grace_s=1, max_traces=max_traces, remember=remember)
    now, n = 0.0, 0
    for trace_ids, source, step in steps:
        now += step
        spans = []
        for t in trace_ids:
            n += 1
            spans.append(Span(t, f"s{n}", None, "op", "svc", 0, 1))
        assert fast.add(spans, now, source) == plain.add(spans, now, source)
        handed = [b.trace_id for b in fast.due(now)]
        assert handed == [b.trace_id for b in plain.due(now)]
        settled = [b.trace_id for b in fast.final(now)]
        assert settled == [b.trace_id for b in plain.final(now)]
        assert _state(fast) == _state(plain)
