"""The assembling stage analyses a burst of due traces a budget's worth per step, so one poll
never runs past the group's max_poll_interval_ms; a trace's records are committable only once
it was analysed, even when its grace ended first."""

from __future__ import annotations

from tests.stream.test_stream_kafka import make_traces
from tracectx.viz.sources.memory import from_readable_spans
from tracectx_stream import SpanStream, StreamSettings
from tracectx_stream.supervise import StageHealth
from tracectx_stream.worker import _AssembleStage


def test_a_burst_is_analysed_over_several_steps_and_committed_only_once_analysed(spans):
    stream = SpanStream(StreamSettings("unused:9092", wait_s=1.0, grace_s=1.0))
    stream.health["assemble"] = StageHealth("assemble")
    stage = _AssembleStage(stream)
    traces, _ = make_traces(spans, 5)
    for offset, members in enumerate(traces):
        stage.assembler.add(from_readable_spans(members).spans, 0.0, source=("p0", offset))
        stage.tracker.seen("p0", offset, 1)
    for buf in stage.assembler.due(10.0):  # all due at once, and all past their grace
        stage.waiting.add(buf.trace_id)
        stage.backlog.append(buf)
    for buf in stage.assembler.final(20.0):
        stage.unfinished[buf.trace_id] = buf
    assert stage.tracker.committable() == {"p0": 0}  # nothing analysed: nothing committable
    stage._analyse_backlog(budget_s=0.0)  # one per step when the budget is spent
    assert stream.stats.traces_assembled == 1 and len(stage.backlog) == 4
    assert stage.tracker.committable() == {"p0": 1}
    stage._analyse_backlog()
    assert stream.stats.traces_assembled == 5 and not stage.backlog and not stage.unfinished
    assert stage.tracker.committable() == {"p0": 5}
    assert stream.stats.paths_out == 5
