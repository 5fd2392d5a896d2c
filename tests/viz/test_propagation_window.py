"""`PropagationWindow`: recent traces checked together, bounded in age and span count."""

from __future__ import annotations

from collections import defaultdict

import pytest

from tests.viz.generator_broken import generate_broken
from tracectx.viz.propagation_check import check_propagation
from tracectx.viz.propagation_window import PropagationWindow


def _traces(run):
    by_trace = defaultdict(list)
    for span in run.spans:
        by_trace[span.trace_id].append(span)
    return sorted(by_trace.values(), key=lambda spans: max(s.end_ns for s in spans))


def _found(report):
    return sorted((f.kind, f.caller.span_id, f.callee.span_id) for f in report.broken)


def test_a_window_holding_everything_finds_what_the_whole_check_finds():
    run = generate_broken(seconds=5, seed=4, drop=0.3)
    window = PropagationWindow(seconds=3600, max_spans=10**6)
    for spans in _traces(run):
        window.add(spans)
    assert len(window) == len(run.spans)
    assert _found(window.report()) == _found(check_propagation(run.spans))
    assert window.report() is window.report()  # cached until the next add
    assert {(r["caller"], r["callee"], r["hop"]) for r in window.health()} >= {
        ("orders", "shipping", "kafka")
    }


def test_old_traces_and_extra_spans_leave_the_window():
    run = generate_broken(seconds=20, seed=4, drop=0.3)
    traces = _traces(run)
    by_age = PropagationWindow(seconds=2, max_spans=10**6)
    for spans in traces:
        by_age.add(spans)
    newest = max(s.end_ns for s in run.spans)
    recent = {t[0].trace_id for t in traces if max(s.end_ns for s in t) >= newest - 2 * 10**9}
    held = by_age.report()
    assert held.broken and 0 < len(by_age) < len(run.spans) // 5
    for f in held.broken:
        assert {f.caller.trace_id, f.callee.trace_id} <= recent
    by_count = PropagationWindow(seconds=3600, max_spans=1000)
    for spans in traces:
        by_count.add(spans)
    assert 1000 - max(len(t) for t in traces) <= len(by_count) <= 1000


def test_a_trace_added_again_replaces_its_copy():
    run = generate_broken(seconds=2, seed=4, drop=0.0)
    [first, *_] = _traces(run)
    window = PropagationWindow()
    window.add(first[:1])
    window.add(first)
    assert len(window) == len(first)
    with pytest.raises(ValueError):
        PropagationWindow(seconds=0)
