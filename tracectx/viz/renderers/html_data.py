"""The HTML page's data: each trace as rows in timeline order, with its error paths as row numbers.

The page draws a waterfall, so the tree is laid out here, once, in Python: a consumer span that
the analysis keeps as a root because its parent is a producer (a Celery ``run`` under its
``send``, a Kafka ``process`` under its ``send``) or because it only links to one is placed under
that producer and flagged ``async``, so the hop is drawn where it happened. Rows come in
pre-order, so a row's subtree is the contiguous range ``[i, end[i])`` — collapsing, expanding and
virtual scrolling are index arithmetic in the page, even at 100k spans.

Columns (one list per field, names and services through string tables) keep the embedded JSON
small; times are microseconds from the trace's first start, because nanoseconds since the epoch
do not fit a JavaScript number exactly. What only the details pane shows (attributes, status
messages, events, links) is one JSON text per trace, ``detail``, that the page parses on the
first click: most of a big trace's bytes, none of its load time. Big texts are `pack`-ed.

Paths come in order of impact (`impact_order`): what escaped first, then by severity, then what
nobody observed, and retries that recovered last. The time axis gets its idle gaps (`idle_gaps`:
stretches where no span runs, as a Kafka hand-off to a DLQ consumer seconds later leaves) so the
page can draw them as breaks; exceptions and retries become marks at the time they happened.
"""

from __future__ import annotations

import base64
import itertools
import json
import zlib
from collections import defaultdict
from operator import attrgetter, methodcaller
from typing import Any

from tracectx import semconv as sc
from tracectx.viz.analysis import ErrorPath, TraceAnalysis
from tracectx.viz.model import Span, SpanEvent
from tracectx.viz.renderers.jaeger import jaeger_link
from tracectx.viz.renderers.json import (
    error_confidence,
    error_evidence,
    error_outcome,
    event_data,
    plain,
)
from tracectx.viz.renderers.paths import roles, visible_spans

__all__ = ["COMPRESS_OVER", "dumps", "idle_gaps", "impact_order", "pack", "page_data"]

_KINDS = {"server": "S", "client": "C", "producer": "P", "consumer": "K", "internal": "I"}
_HANDLED = (sc.EVENT_HANDLED, sc.EVENT_EXPECTED)
_SEVERITY = {"FATAL": 0, "UNKNOWN": 1, "BUSINESS": 3, "TRANSIENT": 4}  # custom kinds: 2
_GROUP = {"escaped": 0, "absorbed": 1, "unobserved": 2}
COMPRESS_OVER = 1_000_000  # characters of JSON: a 100k-span trace's detail is about 17 MB
GAP_SHARE = 0.05  # an idle stretch longer than this share of the trace is drawn as a break
MAX_GAPS = 50
_SCALARS = frozenset((str, int, float, bool))  # exact types: a subclass goes through plain()
_MARKS = {sc.EVENT_EXCEPTION: "x", sc.LOG_EVENT_EXCEPTION: "x", sc.EVENT_RETRY: "r"}
# columns read once a trace, in C (a generator a column cost a 100k-span page 0.3 s)
_START, _END = attrgetter("start_ns"), attrgetter("end_ns")
_NAME, _SERVICE, _KIND = attrgetter("name"), attrgetter("service"), attrgetter("kind")
_ERROR, _MESSAGE = attrgetter("error"), attrgetter("status_message")
_ATTRIBUTES, _VALUES = attrgetter("attributes"), methodcaller("values")
_EVENTS, _LINKS = attrgetter("events"), attrgetter("links")


class _Strings:
    """A string table: each distinct text once, rows refer to it by number."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}

    def __call__(self, text: str) -> int:
        return self.index.setdefault(text, len(self.index))

    def numbers(self, texts: list[str]) -> list[int]:
        """The number of each of `texts` (new ones added): one dict lookup a row, in C."""
        index = self.index
        for text in dict.fromkeys(texts):
            if text not in index:
                index[text] = len(index)
        return list(map(index.__getitem__, texts))

    @property
    def items(self) -> list[str]:
        return list(self.index)  # insertion order: each text at its number


def _display_tree(a: TraceAnalysis) -> tuple[dict[str, list[str]], list[str], dict[str, str]]:
    """Children per span and roots, with async consumers moved under their producer; and for
    each moved span, the producer it now hangs from."""
    parent: dict[str, str] = {c: p for p, kids in a.children.items() for c in kids}
    kids: dict[str, list[str]] = {p: list(c) for p, c in a.children.items()}
    moved: dict[str, str] = {}
    roots = set(a.roots)
    edges = sorted(a.async_edges, key=lambda e: e.kind != "messaging")  # messaging edges first
    for edge in edges:
        target, source = edge.target, edge.source
        if target not in roots or target in moved or source not in a.spans:
            continue
        if edge.source_trace not in (None, a.trace_id):
            continue
        node: str | None = source  # refuse a move that would hang a span under itself
        steps = 0
        while node is not None and node != target and steps <= len(a.spans):
            node = parent.get(node)
            steps += 1
        if node is not None:
            continue
        parent[target] = source
        moved[target] = source
        kids.setdefault(source, []).append(target)
    for source in set(moved.values()):
        kids[source].sort(key=lambda s: a.spans[s].start_ns)
    ordered_roots = [r for r in a.roots if r not in moved]
    return kids, ordered_roots, moved


def _preorder(kids: dict[str, list[str]], roots: list[str]) -> list[str]:
    order: list[str] = []
    stack = roots[::-1]
    while stack:
        sid = stack.pop()
        order.append(sid)
        below = kids.get(sid)
        if below:
            stack.extend(below[::-1])
    return order


def _handled_by(a: TraceAnalysis) -> dict[str, list[str]]:
    """Error id → spans whose handled/expected event names it (a DLQ consumer, say)."""
    out: dict[str, list[str]] = defaultdict(list)
    for span in a.spans.values():
        for event in span.events:
            eid = event.attributes.get(sc.ATTR_ID)
            if event.name in _HANDLED and isinstance(eid, str) and span.span_id not in out[eid]:
                out[eid].append(span.span_id)
    return out


def dumps(data: Any) -> str:
    """Compact JSON; orjson when the viz extra is installed (three times faster on big pages)."""
    try:
        import orjson
    except ImportError:
        pass
    else:
        try:
            return orjson.dumps(data, default=str).decode("utf-8")
        except (TypeError, orjson.JSONEncodeError):  # an int over 64 bits, say
            pass
    return json.dumps(data, separators=(",", ":"), default=str)


def pack(text: str) -> str:
    """`text` as is, or over `COMPRESS_OVER` characters deflated and in base64 behind ``z:``
    (the page inflates it with the browser's own DecompressionStream)."""
    if len(text) <= COMPRESS_OVER:
        return text
    return "z:" + base64.b64encode(zlib.compress(text.encode("utf-8"), 1)).decode("ascii")


def _recovered(a: TraceAnalysis) -> set[str]:
    """Spans that are a failed attempt of a retry group that then succeeded."""
    out: set[str] = set()
    for group in a.retries:
        if group.succeeded:
            out.update(group.attempts[:-1])
    return out


def impact_order(a: TraceAnalysis) -> list[int]:
    """Indexes of `a.errors` by impact: escaped first, then absorbed, then unobserved, each by
    severity (FATAL, UNKNOWN, custom kinds, BUSINESS, TRANSIENT) and start time; errors whose
    retry recovered come last (unless the analysis still says they escaped)."""
    recovered = _recovered(a)

    def key(k: int) -> tuple[int, int, int, int]:
        err: ErrorPath = a.errors[k]
        outcome = error_outcome(err)
        group = _GROUP.get(outcome, 1)
        if err.origin in recovered and outcome != "escaped":
            group = 3
        origin = a.spans.get(err.origin)
        return (group, _SEVERITY.get(err.kind, 2), origin.start_ns if origin else 0, k)

    return sorted(range(len(a.errors)), key=key)


def idle_gaps(spans: list[Span], t0: int, share: float = GAP_SHARE) -> list[list[float]]:
    """``[from, to]`` (µs from `t0`) of the stretches where no span runs that are longer than
    `share` of the trace, the `MAX_GAPS` longest, in time order."""
    return _gaps(list(map(_START, spans)), list(map(_END, spans)), t0, share)


def _gaps(starts: list[int], ends: list[int], t0: int, share: float) -> list[list[float]]:
    if not starts:
        return []
    # by (start, end) as two stable sorts on int keys: no tuple made or compared
    by_start = sorted(range(len(starts)), key=ends.__getitem__)
    by_start.sort(key=starts.__getitem__)
    first = starts[by_start[0]]
    limit = share * (max(max(ends), starts[by_start[-1]]) - first)
    gaps: list[tuple[int, int]] = []
    reach = first
    for k in by_start:
        start, end = starts[k], ends[k]
        if start - reach > limit:
            gaps.append((reach, start))
        if end > reach:
            reach = end
    gaps = sorted(sorted(gaps, key=lambda g: g[0] - g[1])[:MAX_GAPS])
    return [[round((a - t0) / 1000, 1), round((b - t0) / 1000, 1)] for a, b in gaps]


def _mark(event: SpanEvent) -> str | None:
    if event.time_ns is None:
        return None
    return _MARKS.get(event.name)


def _attrs(span: Span) -> dict[str, Any] | None:
    """The span's attributes, JSON-ready: the dict itself when its values already are (most are;
    a copy per span is a second of a 100k-span page)."""
    attributes = span.attributes
    if not attributes:
        return None
    if _SCALARS.issuperset(map(type, attributes.values())):
        return attributes
    return {k: plain(v) for k, v in attributes.items()}


def _all_attrs(spans: list[Span]) -> dict[str, dict[str, Any]]:
    """Row number → attributes, JSON-ready; the values' types are checked for the whole trace
    at once, and the spans' own dicts are used when all are plain (as `_attrs` does a span)."""
    every = list(map(_ATTRIBUTES, spans))
    try:
        plain = _SCALARS.issuperset(
            map(type, itertools.chain.from_iterable(map(_VALUES, filter(None, every))))
        )
    except AttributeError:  # attributes that are not a mapping: span by span, as `_attrs` does
        plain = False
    if not plain:
        return {str(i): at for i, s in enumerate(spans) if (at := _attrs(s))}
    return {str(i): at for i, at in enumerate(every) if at}


def _event(event: SpanEvent, t0: int) -> dict[str, Any]:
    data = event_data(event)
    if event.time_ns is not None:
        data["t"] = round((event.time_ns - t0) / 1000, 1)
    return data


def _trace(
    a: TraceAnalysis, full: bool, names: _Strings, services: _Strings, jaeger_url: str | None
) -> dict[str, Any]:
    kids, roots, moved = _display_tree(a)
    order = _preorder(kids, roots)
    n = len(order)
    row = dict(zip(order, range(n), strict=True))
    spans = list(map(a.spans.__getitem__, order))
    parent = [-1] * n
    for sid, below in kids.items():
        i = row.get(sid)  # a span outside the tree (never for a tree the analysis cut)
        if below and i is not None:
            for kid in below:
                parent[row[kid]] = i
    depth = [0] * n  # a parent comes before its children
    for i, p in enumerate(parent):
        if p >= 0:
            depth[i] = depth[p] + 1
    end = list(range(1, n + 1))
    for i in range(n - 1, -1, -1):
        if parent[i] >= 0 and end[i] > end[parent[i]]:
            end[parent[i]] = end[i]
    starts, ends = list(map(_START, spans)), list(map(_END, spans))
    with_events = [i for i, events in enumerate(map(_EVENTS, spans)) if events]
    t0 = min(starts, default=0)
    t1 = max(max(ends, default=0), max(starts, default=0))

    handled_by = _handled_by(a)
    keep = visible_spans(a, full)
    role = roles(a)
    recovered = _recovered(a)
    paths = []
    for err in (a.errors[k] for k in impact_order(a)):
        extra = [
            s
            for s in handled_by.get(err.error_id or "", [])
            if s != err.absorber and s not in err.span_ids
        ]
        keep.update(extra)
        for sid in extra:
            role.setdefault(sid, "absorbed")
        paths.append(
            {
                "error_id": err.error_id,
                "kind": err.kind,
                "code": err.code,
                "type": err.error_type,
                "message": err.message,
                "origin": row[err.origin],
                "propagators": [row[s] for s in err.propagators],
                "absorber": row[err.absorber] if err.absorber else -1,
                "handled_by": [row[s] for s in extra],
                "escaped": err.escaped,
                "outcome": error_outcome(err),
                "recovered": err.origin in recovered and error_outcome(err) != "escaped",
                "confidence": error_confidence(err),
                "evidence": error_evidence(err),
                "exact": err.exact,
                "cause_id": err.cause_id,
                "metadata": {k: plain(v) for k, v in err.metadata.items()},
                "remote_origin": list(err.remote_origin) if err.remote_origin else None,
            }
        )
    on = [1 if sid in keep else 0 for sid in order]
    for i in range(n - 1, -1, -1):  # a row is on a path's way if anything below it is
        if on[i] and parent[i] >= 0:
            on[parent[i]] = 1
    return {
        "trace_id": a.trace_id,
        "jaeger_link": jaeger_link(jaeger_url, a) if jaeger_url else None,
        "problems": a.problems,
        "duration_us": (t1 - t0) / 1000,
        "id": order,
        "name": names.numbers(list(map(_NAME, spans))),
        "svc": services.numbers(list(map(_SERVICE, spans))),
        "kind": "".join([_KINDS.get(k, "I") for k in map(_KIND, spans)]),
        "start": [(s - t0) // 100 / 10 for s in starts],  # 0.1 µs, no round() per span
        "dur": [(e - s) // 100 / 10 if e > s else 0 for s, e in zip(starts, ends, strict=True)],
        "err": "".join(["1" if e else "0" for e in map(_ERROR, spans)]),
        "depth": depth,
        "parent": parent,
        "end": end,
        "on": "".join(map(str, on)),
        "role": {str(row[sid]): r for sid, r in role.items() if sid in row},
        "async": {str(row[t]): row[s] for t, s in moved.items()},
        "async_edges": [
            {"source": e.source, "target": row[e.target], "kind": e.kind, "trace": e.source_trace}
            for e in a.async_edges
            if e.target in row
        ],
        "retries": [
            {
                "name": g.name,
                "attempts": [row[s] for s in g.attempts],
                "failed": g.failed,
                "succeeded": g.succeeded,
            }
            for g in a.retries
        ],
        "paths": paths,
        "gaps": _gaps(starts, ends, t0, GAP_SHARE),
        "marks": [
            [i, round(((e.time_ns or 0) - t0) / 1000, 1), m]
            for i in with_events
            for e in spans[i].events
            if (m := _mark(e))
        ],
        "detail": pack(
            dumps(
                {
                    "attrs": _all_attrs(spans),
                    "status": {str(i): m for i, m in enumerate(map(_MESSAGE, spans)) if m},
                    "events": {
                        str(i): [_event(e, t0) for e in spans[i].events] for i in with_events
                    },
                    "links": {
                        str(i): [[lk.trace_id, lk.span_id] for lk in links]
                        for i, links in enumerate(map(_LINKS, spans))
                        if links
                    },
                }
            )
        ),
    }


def page_data(
    analyses: list[TraceAnalysis], *, jaeger_url: str | None = None, full: bool = False
) -> dict[str, Any]:
    """Everything the page shows, JSON-ready: traces as rows, error paths by row number, and
    the shared name and service tables. `full` opens every row instead of only error paths."""
    names, services = _Strings(), _Strings()
    traces = [_trace(a, full, names, services, jaeger_url) for a in analyses]
    return {
        "full": full,
        "jaeger_url": jaeger_url.rstrip("/") if jaeger_url else None,
        "names": names.items,
        "services": services.items,
        "traces": traces,
    }
