"""Big inputs stay linear: Jaeger deep links and Mermaid with 16k failing siblings, the terminal
tree with 10 MB texts.

Cores are shared, so besides a generous time bound each test counts the operations that were
quadratic (comparisons of span ids, passes over a trace's error list): those counts do not
depend on the machine's load.
"""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from tests.helpers import Cost
from tracectx import semconv as sc
from tracectx.viz import analyse
from tracectx.viz.model import Span, SpanEvent
from tracectx.viz.renderers import jaeger_link, render_mermaid, render_terminal

SIBLINGS = 16_000
TRACE = "a" * 32


class _CountingId(str):
    """A span id that counts how often it is compared for equality."""

    comparisons = 0

    def __eq__(self, other: object) -> bool:
        _CountingId.comparisons += 1
        return str.__eq__(self, other)

    __hash__ = str.__hash__


class _CountingList(list):
    """A trace's error list that counts full passes over it."""

    passes = 0

    def __iter__(self):
        _CountingList.passes += 1
        return super().__iter__()


def _failing_siblings(n: int, id_type=str):
    root = Span(TRACE, id_type("f" * 16), None, "fanout", "svc", 0, 10 * n, error=True)
    kids = [
        Span(TRACE, id_type(f"{i + 1:016x}"), root.span_id, f"task {i}", "svc", i, i + 1, True)
        for i in range(n)
    ]
    [analysis] = analyse([root, *kids])
    return analysis


@pytest.fixture(scope="module")
def siblings():
    return _failing_siblings(SIBLINGS)


def test_jaeger_link_compares_each_id_a_bounded_number_of_times():
    analysis = _failing_siblings(2_000, _CountingId)
    _CountingId.comparisons = 0
    link = jaeger_link("http://jaeger:16686", analysis)
    # The old list-membership dedup compared every id with every earlier one (~n²/2 = 2M).
    assert _CountingId.comparisons < 10 * 2_000
    assert link.count("%20") == 2_000  # 2001 distinct ids, each once


def test_jaeger_link_16k_failing_siblings(siblings):
    cost = Cost()
    link = jaeger_link("http://jaeger:16686", siblings)
    cost.assert_within(2.0)  # CPU; was 4.6 s; linear takes ~0.1 s
    assert link.count("%20") == SIBLINGS


def test_mermaid_walks_the_error_list_a_bounded_number_of_times(siblings):
    siblings.errors = _CountingList(siblings.errors)
    _CountingList.passes = 0
    cost = Cost()
    text = render_mermaid([siblings])
    cost.stop()
    # The old renderer searched the error list once per drawn span (16k passes).
    assert _CountingList.passes <= 5
    cost.assert_within(6.0)  # CPU; was 8.5 s; linear takes well under 1 s
    assert text.count("class s") == SIBLINGS + 1  # every span drawn with its role


@pytest.mark.parametrize(
    "field",
    ["name", "service", "status", "kind", "code", "type", "meta", "error_id", "origin_trace"],
)
def test_terminal_cost_does_not_grow_with_a_10_mb_text(field):
    big = "\u202e界x\n" * 2_500_000  # 10 M characters, with controls, wide and bidi
    exact = {sc.ATTR_ID: "e1", sc.ATTR_ROLE: sc.ROLE_ORIGIN}  # an exact path shows them all
    span = dict(name="op", service="svc", status_message="", attributes=exact, events=[])
    if field in ("name", "service"):
        span[field] = big
    elif field == "status":
        span["status_message"] = big
    elif field == "type":
        span["events"] = [SpanEvent("exception", {"exception.type": big})]
    elif field == "origin_trace":  # a propagator whose origin is in another trace
        span["attributes"] = {
            sc.ATTR_ID: "e1",
            sc.ATTR_ROLE: sc.ROLE_PROPAGATED,
            sc.ATTR_ORIGIN_SPAN_ID: "9" * 16,
            sc.ATTR_ORIGIN_TRACE_ID: big,
        }
    else:
        key = {
            "kind": sc.ATTR_KIND,
            "code": sc.ATTR_CODE,
            "meta": sc.ATTR_META_PREFIX + "order",
            "error_id": sc.ATTR_ID,
        }[field]
        span["attributes"] = {**exact, key: big}
    analyses = analyse([Span(TRACE, "1" * 16, None, start_ns=0, end_ns=1, error=True, **span)])
    out = io.StringIO()
    cost = Cost()
    render_terminal(analyses, Console(file=out, width=120))
    cost.assert_within(2.0)  # CPU seconds
    assert len(out.getvalue()) < 5_000  # every text cut before it is escaped and laid out
    assert "\u202e" not in out.getvalue() and "\\u202e" in out.getvalue()
