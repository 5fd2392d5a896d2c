"""The stream's pure parts: trace assembly, committable offsets, path records and flow."""

from __future__ import annotations

from tracectx.viz.analysis import analyse
from tracectx.viz.model import Span
from tracectx_stream.assembler import TraceAssembler
from tracectx_stream.offsets import OffsetTracker
from tracectx_stream.paths import FlowWindow, path_records


def span(trace: str, sid: str, parent: str | None = None, *, error: bool = False) -> Span:
    return Span(trace, sid, parent, f"op-{sid}", "svc", 0, 1_000, error=error)


class TestAssembler:
    def test_a_trace_is_handed_over_once_quiet(self):
        asm = TraceAssembler(wait_s=5)
        asm.add([span("t1", "a")], now=0, source=("p0", 1))
        asm.add([span("t1", "b", "a")], now=3, source=("p0", 2))
        assert asm.due(now=7) == []  # last span at 3: quiet only from 8
        [done] = asm.due(now=8)
        assert [s.span_id for s in done.spans] == ["a", "b"]
        assert done.sources == {("p0", 1), ("p0", 2)}

    def test_a_late_span_within_grace_reopens_the_trace(self):
        asm = TraceAssembler(wait_s=1, grace_s=10)
        asm.add([span("t1", "root")], now=0, source=("p0", 1))
        assert [b.trace_id for b in asm.due(now=2)] == ["t1"]
        assert asm.final(now=2) == []  # in grace: its records must not be committed yet
        assert asm.add([span("t1", "child", "root")], now=5, source=("p1", 7)) == {"t1"}
        [again] = asm.due(now=7)
        assert {s.span_id for s in again.spans} == {"root", "child"}
        assert asm.stats.reopened == 1
        [final] = asm.final(now=17)
        assert final.sources == {("p0", 1), ("p1", 7)}

    def test_spans_of_a_final_trace_are_counted_not_reanalysed(self):
        asm = TraceAssembler(wait_s=1, grace_s=2)
        asm.add([span("t1", "a")], now=0)
        asm.due(now=1)
        asm.final(now=3)
        assert asm.add([span("t1", "late")], now=4) == set()
        assert asm.stats.late_spans == 1 and len(asm) == 0

    def test_the_cap_hands_over_the_oldest_early_and_counts_it(self):
        asm = TraceAssembler(wait_s=100, max_traces=3)
        for i in range(5):
            asm.add([span(f"t{i}", "a")], now=i)
        assert asm.stats.evicted == 2
        assert [b.trace_id for b in asm.due(now=5)] == ["t0", "t1"]

    def test_busy_traces_are_handed_over_at_max_age(self):
        asm = TraceAssembler(wait_s=2, max_age_s=10)
        out = []
        for t in range(0, 12):
            asm.add([span("busy", f"s{t}")], now=t)
            out += [(t, b.trace_id) for b in asm.due(now=t)]
        assert out == [(10, "busy")]  # never quiet, handed over at 10 s of age
        assert asm.stats.reopened == 1  # the span at 11 s came within grace

    def test_drop_forgets_traces_of_revoked_partitions(self):
        asm = TraceAssembler(wait_s=5)
        asm.add([span("t1", "a")], now=0, source=("p0", 1))
        asm.add([span("t2", "a")], now=0, source=("p1", 1))
        dropped = asm.drop(lambda b: not any(src[0] == "p0" for src in b.sources))
        assert [b.trace_id for b in dropped] == ["t1"] and "t2" in asm


class TestOffsets:
    def test_commit_stops_at_the_oldest_record_still_pending(self):
        t = OffsetTracker()
        t.seen("p0", 0, traces=1)
        t.seen("p0", 1, traces=2)
        t.seen("p0", 2, traces=0)  # poison or late: nothing to wait for
        assert t.committable() == {"p0": 0}
        t.done([("p0", 0)])
        assert t.committable() == {"p0": 1}
        t.done([("p0", 1)])
        assert t.committable() == {"p0": 1}  # still one trace of record 1 open
        t.done([("p0", 1)])
        assert t.committable() == {"p0": 3}
        t.committed({"p0": 3})
        assert t.committable() == {}


def test_path_records_have_stable_keys_and_feed_the_flow():
    spans = [span("t1", "root", error=True), span("t1", "leaf", "root", error=True)]
    [analysis] = analyse(spans)
    [record] = path_records(analysis)
    assert record["key"] == f"t1/{record['error_id'] or 'leaf'}"
    assert record["origin"]["span_id"] == "leaf" and record["outcome"] == "escaped"
    flow = FlowWindow(horizon_s=60, bucket_s=10)
    flow.add(record, now=0)
    snap = flow.snapshot(now=5)
    assert snap["edges"] == [
        {"from": "svc: op-leaf", "to": "svc: op-root", "count": 1, "kinds": {"UNKNOWN": 1}}
    ]
    assert flow.snapshot(now=120)["edges"] == []  # out of the rolling window


def test_stream_counters_are_observable_otel_metrics():
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    from tracectx_stream.stats import StreamStats, register_metrics

    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    stats = StreamStats(spans_in=7, lag=3)
    stats.count_kind("TRANSIENT", "shop")
    register_metrics(stats, provider)
    data = reader.get_metrics_data()
    points = {
        m.name: [p.value for p in m.data.data_points]
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
        if m.name.startswith("tracectx.stream.")
    }
    assert points["tracectx.stream.spans_in"] == [7] and points["tracectx.stream.lag"] == [3]
    assert points["tracectx.stream.errors"] == [1]


def test_the_flow_window_stays_bounded_whatever_the_span_names():
    """Node names come from span data: a flood of distinct names is counted, not kept."""
    from tracectx_stream import paths

    flow = FlowWindow(horizon_s=60, bucket_s=60)
    for i in range(paths.MAX_KEYS_PER_BUCKET + 500):
        hop = {"span_id": "a", "service": "svc", "name": f"GET /user/{i}" + "x" * 1000}
        record = {"origin": hop, "propagators": [], "absorber": None}
        flow.add({**record, "kind": "BUSINESS", "outcome": "escaped"}, now=0)
    snap = flow.snapshot(now=1)
    assert len(snap["origins"]) <= paths.MAX_KEYS_PER_BUCKET + 1
    assert flow.overflow == 2 * 500  # origins and outcomes tables
    assert max(len(o["node"]) for o in snap["origins"]) <= paths.MAX_NODE
    assert sum(o["count"] for o in snap["origins"]) == paths.MAX_KEYS_PER_BUCKET + 500


def test_a_reopened_trace_supersedes_its_partial_path_under_the_same_key():
    """A trace analysed in part (its root held up by a rebalance) said "escaped"; when the late
    root re-opens it, the whole path is produced again under the same key, once; re-delivered
    spans giving the same path again are not produced twice, and the flow counts the key once."""
    from tracectx_stream import SpanStream, StreamSettings
    from tracectx_stream.assembler import TraceBuffer

    got: list[dict[str, object]] = []
    stream = SpanStream(StreamSettings("127.0.0.1:9", paths_topic=None), [got.append])
    leaf = span("t1", "leaf", "root", error=True)
    root = span("t1", "root")
    stream._analyse(TraceBuffer("t1", 0, 0, spans=[leaf]))
    stream._analyse(TraceBuffer("t1", 0, 0, spans=[root, leaf]))
    stream._analyse(TraceBuffer("t1", 0, 0, spans=[leaf, root]))  # re-delivered, same path
    assert [r["key"] for r in got] == ["t1/leaf", "t1/leaf"]
    assert got[0]["absorber"] is None and got[1]["absorber"]["span_id"] == "root"
    assert (stream.stats.paths_out, stream.stats.updated_paths) == (2, 1)
    assert stream.stats.duplicate_paths == 1
    flow = stream.flow.snapshot()
    assert [(e["from"], e["to"], e["count"]) for e in flow["edges"]] == [
        ("svc: op-leaf", "svc: op-root", 1)
    ]  # the partial version's counts were taken back
    assert flow["outcomes"] == {"svc: op-root": {"absorbed": 1}}


def test_safe_offset_is_where_a_partition_is_read_again_after_a_rebalance():
    """A partition kept across a rebalance is rewound here (the worker seeks to it)."""
    t = OffsetTracker()
    assert t.safe_offset("p0") is None  # nothing read: the client's own position stands
    t.seen("p0", 1, 1)
    t.seen("p0", 2, 0)
    assert t.safe_offset("p0") == 1  # record 1 still feeds an open trace
    t.done([("p0", 1)])
    assert t.safe_offset("p0") == 3


def stream_of(got: list[dict[str, object]]):  # type: ignore[no-untyped-def]
    from tracectx_stream import SpanStream, StreamSettings

    return SpanStream(StreamSettings("127.0.0.1:9", paths_topic=None), [got.append])


def test_a_path_whose_key_changes_when_the_trace_fills_in_is_withdrawn():
    """Only the root had arrived: an inferred path keyed by the root. With the late failing
    child the path is keyed by the child; the root's is withdrawn from counts and flow."""
    from tracectx_stream.assembler import TraceBuffer

    got: list[dict[str, object]] = []
    stream = stream_of(got)
    root = span("t1", "root", error=True)
    child = span("t1", "leaf", "root", error=True)
    stream._analyse(TraceBuffer("t1", 0, 0, spans=[root]))
    stream._analyse(TraceBuffer("t1", 0, 0, spans=[root, child]))
    assert [r["key"] for r in got] == ["t1/root", "t1/leaf"]
    assert stream.stats.withdrawn_paths == 1
    assert sum(stream.stats.errors_by_kind.values()) == 1  # one error, counted once
    flow = stream.flow.snapshot()
    assert [(o["node"], o["count"]) for o in flow["origins"]] == [("svc: op-leaf", 1)]


def test_a_fragment_after_the_whole_trace_does_not_replace_it():
    """After a rebalance a kept partition is re-read from its oldest pending record; a trace
    rebuilt from fewer spans than were analysed before keeps the fuller result."""
    from tracectx_stream.assembler import TraceBuffer

    got: list[dict[str, object]] = []
    stream = stream_of(got)
    leaf = span("t1", "leaf", "root", error=True)
    root = span("t1", "root")
    stream._analyse(TraceBuffer("t1", 0, 0, spans=[root, leaf]))
    stream._analyse(TraceBuffer("t1", 0, 0, spans=[leaf]))
    assert len(got) == 1 and got[0]["absorber"]["span_id"] == "root"
    assert stream.stats.updated_paths == 0


def test_two_paths_with_one_error_id_get_distinct_keys_and_are_stable():
    """An exact path and an inferred one on another failing span carrying the same error id:
    distinct keys, and analysing the same spans again produces nothing new."""
    from tracectx import semconv as sc
    from tracectx_stream.assembler import TraceBuffer

    origin = Span("t1", "a", "root", "op-a", "svc", 0, 1_000, error=True,
                  attributes={sc.ATTR_ID: "e1", sc.ATTR_ROLE: sc.ROLE_ORIGIN})  # fmt: skip
    other = Span("t1", "b", "root", "op-b", "svc", 0, 1_000, error=True,
                 attributes={sc.ATTR_ID: "e1", sc.ATTR_ROLE: sc.ROLE_ABSORBED})  # fmt: skip
    spans = [span("t1", "root"), origin, other]
    [analysis] = analyse(spans)
    keys = [r["key"] for r in path_records(analysis)]
    assert len(keys) == len(set(keys)) >= 2
    got: list[dict[str, object]] = []
    stream = stream_of(got)
    stream._analyse(TraceBuffer("t1", 0, 0, spans=list(spans)))
    stream._analyse(TraceBuffer("t1", 0, 0, spans=list(spans)))
    assert len(got) == len(keys) and stream.stats.updated_paths == 0
