"""Property tests for `check_propagation` and `analyse_joined` on spans read from outside.

Documented behaviour under test: any spans (ids that collide, cycles, parents and links that
point anywhere, hostile attribute values under the keys the check reads) give a report without
raising; each finding names spans of the input, with a confidence in 0-1; the health table has
at most a row per call and in-process hop; the join keeps every span; each example stays
within the time and memory bounds.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.bounds import BUDGET, bounded
from tests.fuzz.test_viz_fuzz import hostile_text, json_value, otlp_doc
from tracectx.viz.model import Link, Span
from tracectx.viz.propagation_check import FINDING_KINDS, check_propagation
from tracectx.viz.sources.otlp_json import parse_otlp
from tracectx.viz.trace_join import analyse_joined

_KEYS = [
    "http.request.method",
    "http.method",
    "url.full",
    "url.path",
    "http.route",
    "http.target",
    "server.address",
    "server.port",
    "rpc.system",
    "rpc.service",
    "rpc.method",
    "messaging.system",
    "messaging.destination.name",
    "messaging.message.id",
    "messaging.kafka.message.key",
    "celery.task.name",
    "thread.name",
    "thread.id",
    "tracectx.task.name",
    "http.response.status_code",
]
_IDS = st.sampled_from(["t1", "t2", "t3"])
_SPAN_IDS = st.sampled_from(["a", "b", "c", "d", "e", "f"])
_VALUES = (
    json_value
    | st.sampled_from(
        ["GET", "kafka", "celery", "grpc", "/x/{id}", "/x/1", "ThreadPoolExecutor-0_1"]
    )
    | st.sampled_from(["http://h:1/x/1", "http://[::1", "Task-1", "MainThread"])
)

span = st.builds(
    Span,
    trace_id=_IDS,
    span_id=_SPAN_IDS,
    parent_id=st.none() | _SPAN_IDS,
    name=hostile_text | st.sampled_from(["GET /x/1", "POST", "send x"]),
    service=hostile_text | st.sampled_from(["a", "b"]),
    start_ns=st.integers(-(2**63), 2**63 - 1) | st.integers(0, 10**8),
    end_ns=st.integers(-(2**63), 2**63 - 1) | st.integers(0, 10**8),
    error=st.booleans(),
    kind=st.sampled_from(["internal", "server", "client", "producer", "consumer", "x"]),
    attributes=st.dictionaries(st.sampled_from(_KEYS), _VALUES, max_size=6),
    links=st.lists(st.builds(Link, _IDS, _SPAN_IDS), max_size=2),
)


def _assert_report(spans: list[Span]) -> None:
    report = check_propagation(spans)
    keys = {(s.trace_id, s.span_id) for s in spans}
    for finding in report.findings:
        assert finding.kind in FINDING_KINDS
        assert 0 <= finding.confidence <= 1
        assert finding.callee is not None
        assert (finding.callee.trace_id, finding.callee.span_id) in keys
        assert finding.summary
    assert len(report.health) <= 2 * len(spans)
    analyses = analyse_joined(spans, report)
    assert sum(len(a.spans) for a in analyses) <= len(spans)


@BUDGET
@given(st.lists(span, max_size=25))
def test_any_spans_give_a_report(spans):
    with bounded():
        _assert_report(spans)


@BUDGET
@given(otlp_doc)
def test_spans_read_from_any_otlp_document(doc):
    with bounded():
        _assert_report(parse_otlp(doc).spans)
