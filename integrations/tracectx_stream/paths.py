"""Error paths as records, and the fleet-wide error flow as rolling counts.

`path_records` turns the visualiser's analysis of one trace (the same code path as
``tracectx graph``) into JSON-ready records, one per error, each with a stable `key`
(``<trace id>/<error id or origin span>``): re-delivered spans give the same key, so a consumer
of the paths topic (compacted, keyed by it) and the alert stage count each error once.
`FlowWindow` keeps origin → propagator → absorber edge counts by service/operation and kind in
time buckets, so the flow graph covers a rolling window with bounded memory.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import threading
import time
from collections import Counter, OrderedDict
from typing import Any

import orjson

from tracectx.viz.analysis import ErrorPath, TraceAnalysis
from tracectx.viz.model import Span

__all__ = ["FlowWindow", "SeenTraces", "TraceOutput", "outcome", "path_json", "path_records"]

SCHEMA = "tracectx.stream.path/v1"
# A path record stays far under Kafka's 1 MiB record limit whatever the spans carried.
MAX_MESSAGE = 4096
MAX_EVIDENCE = 500
MAX_EVIDENCE_LINES = 32


def outcome(path: ErrorPath) -> str:
    """``absorbed`` (a span handled it), ``escaped`` (it left the trace's root) or
    ``unobserved`` (fire-and-forget work nobody waited for), as the analysis decided."""
    return path.outcome


def _hop(span: Span | None, span_id: str) -> dict[str, Any]:
    if span is None:
        return {"span_id": span_id}
    return {
        "span_id": span_id,
        "service": span.service,
        "name": span.name,
        "kind": span.kind,
        "start_ns": span.start_ns,
        "end_ns": span.end_ns,
    }


def path_json(record: dict[str, Any]) -> bytes:
    """A path record as compact JSON, the value produced to the paths topic: orjson (the
    stream's extras have it; 1.4 µs a record where the standard library took 15.6), the
    standard library for what orjson refuses (an int over 64 bits)."""
    try:
        return orjson.dumps(record, default=str)
    except (TypeError, orjson.JSONEncodeError):
        return json.dumps(record, separators=(",", ":"), default=str).encode()


def path_records(analysis: TraceAnalysis) -> list[dict[str, Any]]:
    """One JSON-ready record per error path of a trace."""
    out = []
    keys: set[str] = set()
    for path in analysis.errors:
        spans = analysis.spans
        key = f"{analysis.trace_id}/{path.error_id or path.origin}"
        if key in keys:  # a second path with the same error id (e.g. inferred on another span)
            key = f"{key}@{path.origin}"
        keys.add(key)
        out.append(
            {
                "schema": SCHEMA,
                "key": key,
                "trace_id": analysis.trace_id,
                "error_id": path.error_id,
                "kind": path.kind,
                "code": path.code,
                "type": path.error_type,
                "message": path.message[:MAX_MESSAGE],
                "exact": path.exact,
                "confidence": path.confidence,
                "evidence": [e[:MAX_EVIDENCE] for e in path.evidence[:MAX_EVIDENCE_LINES]],
                "outcome": outcome(path),
                "origin": _hop(spans.get(path.origin), path.origin),
                "propagators": [_hop(spans.get(s), s) for s in path.propagators],
                "absorber": _hop(spans.get(path.absorber), path.absorber)
                if path.absorber
                else None,
                "cause_id": path.cause_id,
                "metadata": dict(path.metadata),
                "remote_origin": list(path.remote_origin) if path.remote_origin else None,
            }
        )
    return out


@dataclasses.dataclass(slots=True)
class TraceOutput:
    """What was produced for one trace: how many spans its analysis saw, and per path key a
    fingerprint of the record and the (kind, service) it was counted under."""

    spans: int
    paths: dict[str, tuple[int, str, str]]


class SeenTraces:
    """The paths produced for the last `size` traces, so a trace analysed again is compared
    with its earlier result: re-delivered spans give the same paths (not produced twice); a
    trace re-opened by a late span gives fuller ones (produced again, the last wins)."""

    def __init__(self, size: int = 200_000) -> None:
        self.size = size
        self._traces: OrderedDict[str, TraceOutput] = OrderedDict()

    def get(self, trace_id: str) -> TraceOutput | None:
        return self._traces.get(trace_id)

    def pop(self, trace_id: str) -> TraceOutput | None:
        """Forget a trace (its output was refused: it is produced again when re-read)."""
        return self._traces.pop(trace_id, None)

    def put(self, trace_id: str, output: TraceOutput) -> None:
        self._traces[trace_id] = output
        self._traces.move_to_end(trace_id)
        if len(self._traces) > self.size:
            self._traces.popitem(last=False)


# What one `FlowWindow.add` counted: its bucket, and (table, key) per count.
FlowCount = tuple[int, tuple[tuple[str, tuple[str, ...]], ...]]

MAX_KEYS_PER_BUCKET = 10_000  # distinct edges (or origins, outcomes) counted in one bucket
MAX_NODE = 200  # characters of a service/operation node name
OTHER = "(other)"


def _node(hop: dict[str, Any]) -> str:
    return f"{hop.get('service', '?')}: {hop.get('name', hop['span_id'])}"[:MAX_NODE]


class FlowWindow:
    """Error flow counts over the last `horizon_s`, in buckets of `bucket_s`.

    Node names come from span data, so each bucket counts at most `MAX_KEYS_PER_BUCKET`
    distinct keys per table; further ones are counted under ``(other)`` (and in `overflow`).
    Thread-safe: the worker adds while the HTTP thread takes snapshots.
    """

    def __init__(self, horizon_s: float = 3600.0, bucket_s: float = 60.0) -> None:
        self.horizon_s, self.bucket_s = horizon_s, bucket_s
        self._buckets: OrderedDict[int, dict[str, Counter[Any]]] = OrderedDict()
        self.overflow = 0
        self._lock = threading.Lock()

    def _count(
        self, counter: Counter[Any], key: tuple[str, ...], other: tuple[str, ...]
    ) -> tuple[str, ...]:
        if key not in counter and len(counter) >= MAX_KEYS_PER_BUCKET:
            self.overflow += 1
            key = other
        counter[key] += 1
        return key

    def _bucket(self, index: int) -> dict[str, Counter[Any]]:
        found = self._buckets.get(index)
        if found is None:
            found = self._buckets[index] = {
                "edges": Counter(),
                "origins": Counter(),
                "outcomes": Counter(),
            }
        oldest = index - int(self.horizon_s // self.bucket_s)
        while self._buckets and next(iter(self._buckets)) <= oldest:
            self._buckets.popitem(last=False)
        return found

    def add(self, record: dict[str, Any], now: float | None = None) -> FlowCount:
        """Count one error path record; what was counted is returned, for `retract`."""
        chain = [record["origin"], *record["propagators"]]
        if record["absorber"]:
            chain.append(record["absorber"])
        kind = record["kind"]
        with self._lock:
            index = int((time.time() if now is None else now) // self.bucket_s)
            bucket = self._bucket(index)
            counted = [
                ("origins", self._count(bucket["origins"], (_node(chain[0]), kind), (OTHER, ""))),
                (
                    "outcomes",
                    self._count(
                        bucket["outcomes"], (_node(chain[-1]), record["outcome"]), (OTHER, "")
                    ),
                ),
            ]
            for a, b in itertools.pairwise(chain):
                if _node(a) != _node(b):
                    edge = (_node(a), _node(b), kind)
                    counted.append(
                        ("edges", self._count(bucket["edges"], edge, (OTHER, OTHER, "")))
                    )
        return index, tuple(counted)

    def retract(self, count: FlowCount) -> None:
        """Take back what `add` counted (a re-opened trace's path replaced it); nothing if its
        bucket has left the window."""
        index, counted = count
        with self._lock:
            bucket = self._buckets.get(index)
            if bucket is None:
                return
            for table, key in counted:
                counter = bucket[table]
                counter[key] -= 1
                if counter[key] <= 0:
                    del counter[key]

    def snapshot(self, now: float | None = None) -> dict[str, Any]:
        """The flow over the window, in the ``flow`` shape of ``tracectx graph --format json``
        (edges with counts and kinds, top origins) plus outcomes by node, and how many counts
        went under ``(other)`` since the start (`overflow`)."""
        with self._lock:
            self._bucket(int((time.time() if now is None else now) // self.bucket_s))
            buckets = [
                {name: Counter(table) for name, table in bucket.items()}
                for bucket in self._buckets.values()
            ]
            overflow = self.overflow
        edges: Counter[tuple[str, str]] = Counter()
        kinds: dict[tuple[str, str], Counter[str]] = {}
        origins: Counter[str] = Counter()
        origin_kinds: dict[str, Counter[str]] = {}
        outcomes: dict[str, Counter[str]] = {}
        for bucket in buckets:
            for (a, b, kind), n in bucket["edges"].items():
                edges[(a, b)] += n
                kinds.setdefault((a, b), Counter())[kind] += n
            for (node, kind), n in bucket["origins"].items():
                origins[node] += n
                origin_kinds.setdefault(node, Counter())[kind] += n
            for (node, result), n in bucket["outcomes"].items():
                outcomes.setdefault(node, Counter())[result] += n
        return {
            "window_s": self.horizon_s,
            "edges": [
                {"from": a, "to": b, "count": n, "kinds": dict(kinds[(a, b)])}
                for (a, b), n in edges.most_common()
            ],
            "origins": [
                {"node": node, "count": n, "kinds": dict(origin_kinds[node])}
                for node, n in origins.most_common()
            ],
            "outcomes": {node: dict(c) for node, c in outcomes.items()},
            "overflow": overflow,
        }
