"""Error origins, propagators, absorbers, retries and async hops rebuilt from real SDK spans."""

from __future__ import annotations

from tracectx.viz import analyse, flow_graph
from tracectx.viz.model import Span, SpanSet


def _by_name(analysis, name):
    return next(s for s in analysis.spans.values() if s.name == name)


def _error_at(analysis, name):
    sid = _by_name(analysis, name).span_id
    return next(e for e in analysis.errors if e.origin == sid)


class TestExactPaths:
    def test_business_error_absorbed_by_the_span_that_handled_it(self, pipeline_spans):
        [a] = analyse(pipeline_spans)
        err = _error_at(a, "debit")
        assert (err.kind, err.code, err.exact) == ("BUSINESS", "E_FUNDS", True)
        assert err.metadata == {"account_id": "a1"}
        assert err.absorber == _by_name(a, "pay").span_id and not err.escaped

    def test_thread_pool_error_climbs_to_the_fanout_span(self, pipeline_spans):
        [a] = analyse(pipeline_spans)
        err = _error_at(a, "worker")
        assert err.error_type == "ZeroDivisionError"
        assert err.absorber == _by_name(a, "fanout").span_id

    def test_retries_are_grouped(self, pipeline_spans):
        [a] = analyse(pipeline_spans)
        [group] = [g for g in a.retries if g.name == "reserve"]
        assert (len(group.attempts), group.failed, group.succeeded) == (2, 1, True)

    def test_consumer_error_is_its_own_origin_not_the_producers(self, pipeline_spans):
        [a] = analyse(pipeline_spans)
        err = _error_at(a, "handle")
        consume, publish = _by_name(a, "consume"), _by_name(a, "publish")
        assert err.absorber == consume.span_id
        assert not any(e.origin == publish.span_id for e in a.errors)
        assert any(
            e.source == publish.span_id and e.target == consume.span_id for e in a.async_edges
        )

    def test_fatal_escapes_its_span_but_is_absorbed_by_the_request(self, pipeline_spans):
        [a] = analyse(pipeline_spans)
        err = _error_at(a, "boot")
        assert err.kind == "FATAL" and err.absorber == _by_name(a, "request").span_id


def _span(sid, parent=None, error=False, name=None, kind="internal", trace="a" * 32, **attrs):
    return Span(
        trace, sid, parent, name or sid, "svc", 0, 1, error=error, kind=kind, attributes=attrs
    )


class TestInferredPaths:
    def test_deepest_errored_span_is_the_origin(self):
        spans = [
            _span("0" * 15 + "1"),
            _span("0" * 15 + "2", "0" * 15 + "1", error=True),
            _span("0" * 15 + "3", "0" * 15 + "2", error=True),
        ]
        [a] = analyse(spans)
        [err] = a.errors
        assert err.origin == "0" * 15 + "3" and err.propagators == ["0" * 15 + "2"]
        assert err.absorber == "0" * 15 + "1" and not err.exact

    def test_error_reaching_root_escapes(self):
        [a] = analyse([_span("1" * 16, error=True)])
        assert a.errors[0].escaped


class TestBrokenInput:
    def test_missing_parent_duplicates_and_cycles_are_listed_not_raised(self):
        spans = [
            _span("a" * 16, "f" * 16, error=True),  # missing parent
            _span("b" * 16, "c" * 16),
            _span("c" * 16, "b" * 16, error=True),  # cycle b <-> c
            _span("b" * 16, name="dup"),
        ]
        [a] = analyse(SpanSet(spans, ["upstream problem"]))
        text = " ".join(a.problems)
        assert "missing parent" in text and "duplicate span id" in text and "cycle" in text
        assert "upstream problem" in text
        assert a.errors

    def test_mixed_traces_are_split(self):
        spans = [_span("1" * 16, trace="1" * 32), _span("2" * 16, trace="2" * 32, error=True)]
        assert sorted(a.trace_id for a in analyse(spans)) == ["1" * 32, "2" * 32]


def test_flow_graph_counts_across_traces(spans):
    from tests.viz.conftest import produce_pipeline
    from tracectx.viz.sources.memory import from_readable_spans

    produce_pipeline()
    produce_pipeline()
    graph = flow_graph(analyse(from_readable_spans(spans.get_finished_spans())))
    assert graph.origins["tracectx-test: debit"] == 2
    assert graph.edges[("tracectx-test: debit", "tracectx-test: pay")] == 2
    assert graph.edge_kinds[("tracectx-test: debit", "tracectx-test: pay")]["BUSINESS"] == 2
