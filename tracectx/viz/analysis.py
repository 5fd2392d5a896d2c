"""Rebuild error propagation paths from spans.

Per trace, each error gets an *origin*, the *propagators* it climbed through and the *absorber*
that handled it (or it escaped to the root). Exact when spans carry tracectx error ids (the id is
followed across spans, processes and traces); otherwise the standard rule applies: the deepest
errored span with no errored children along *blocking* edges is the origin, errored ancestors
propagate, the first non-error ancestor absorbs.

Async hops (links, FOLLOWS_FROM, producer→consumer) are not blocking: an error on the consuming
side is its own origin connected by an async edge, never blamed on the producer.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

from tracectx import semconv as sc
from tracectx.viz.model import Span, SpanSet

__all__ = [
    "AsyncEdge",
    "ErrorPath",
    "FlowGraph",
    "RetryGroup",
    "TraceAnalysis",
    "analyse",
    "flow_graph",
]


@dataclasses.dataclass(slots=True)
class ErrorPath:
    """One error's journey through a trace."""

    trace_id: str
    origin: str
    error_id: str | None = None
    kind: str = "UNKNOWN"
    code: str = ""
    error_type: str = ""
    message: str = ""
    propagators: list[str] = dataclasses.field(default_factory=list)
    absorber: str | None = None
    escaped: bool = False
    exact: bool = False
    cause_id: str | None = None
    metadata: dict[str, Any] = dataclasses.field(default_factory=dict)
    remote_origin: tuple[str, str] | None = None  # (trace id, span id) of an origin elsewhere

    @property
    def span_ids(self) -> list[str]:
        path = [self.origin, *self.propagators]
        return path + ([self.absorber] if self.absorber else [])


@dataclasses.dataclass(slots=True)
class AsyncEdge:
    source: str  # span id (may be in another trace)
    target: str
    kind: str  # "messaging", "link", "follows_from"
    source_trace: str | None = None


@dataclasses.dataclass(slots=True)
class RetryGroup:
    parent: str | None
    name: str
    attempts: list[str]  # span ids by start time
    failed: int
    succeeded: bool


@dataclasses.dataclass(slots=True)
class TraceAnalysis:
    trace_id: str
    spans: dict[str, Span]
    children: dict[str, list[str]]
    roots: list[str]
    errors: list[ErrorPath]
    async_edges: list[AsyncEdge]
    retries: list[RetryGroup]
    problems: list[str]

    def origin_spans(self) -> set[str]:
        return {e.origin for e in self.errors}


def _is_async_child(child: Span, parent: Span) -> bool:
    return child.kind == "consumer" and parent.kind == "producer"


def _exception_info(span: Span) -> tuple[str, str]:
    for event in span.events:
        if event.name == "exception":
            return (
                str(event.attributes.get("exception.type", "")),
                str(event.attributes.get("exception.message", "")),
            )
    return str(span.attributes.get(sc.ATTR_ERROR_TYPE, "")), span.status_message


class _Trace:
    """Index of one trace's spans: blocking parents/children, async edges, problems."""

    def __init__(self, trace_id: str, spans: list[Span], problems: list[str]) -> None:
        self.trace_id = trace_id
        self.spans: dict[str, Span] = {}
        for span in spans:
            kept = self.spans.get(span.span_id)
            if kept is None:
                self.spans[span.span_id] = span
                continue
            if span.error and not kept.error:  # the copy that carries the error tells more
                self.spans[span.span_id] = span
                which = "kept the copy with the error"
            else:
                which = "kept the first copy"
            problems.append(f"trace {trace_id}: duplicate span id {span.span_id}, {which}")
        self.parent: dict[str, str] = {}  # blocking parent
        self.children: dict[str, list[str]] = defaultdict(list)
        self.async_edges: list[AsyncEdge] = []
        self.roots: list[str] = []
        for span in self.spans.values():
            pid = span.parent_id
            parent = self.spans.get(pid) if pid else None
            if pid and parent is None:
                problems.append(f"trace {trace_id}: span {span.span_id} has missing parent {pid}")
            elif pid == span.span_id:
                problems.append(
                    f"trace {trace_id}: span {span.span_id} is its own parent, shown as a root"
                )
            if parent is None or pid == span.span_id:
                self.roots.append(span.span_id)
            elif _is_async_child(span, parent):
                self.async_edges.append(AsyncEdge(parent.span_id, span.span_id, "messaging"))
                self.roots.append(span.span_id)
            else:
                self.parent[span.span_id] = parent.span_id
                self.children[parent.span_id].append(span.span_id)
            for link in span.links:
                kind = "link"
                self.async_edges.append(
                    AsyncEdge(link.span_id, span.span_id, kind, source_trace=link.trace_id)
                )
        self._break_cycles(problems)
        for kids in self.children.values():
            kids.sort(key=lambda s: self.spans[s].start_ns)
        self.roots.sort(key=lambda s: self.spans[s].start_ns)

    def _break_cycles(self, problems: list[str]) -> None:
        state: dict[str, int] = {}
        for start in list(self.parent):
            path: list[str] = []
            node: str | None = start
            while node is not None and state.get(node, 0) == 0:
                state[node] = 1
                path.append(node)
                node = self.parent.get(node)
            if node is not None and state.get(node) == 1:  # came back to this walk: a cycle
                problems.append(f"trace {self.trace_id}: parent cycle at span {node}, cut")
                parent = self.parent.pop(node)
                self.children[parent].remove(node)
                self.roots.append(node)
            for visited in path:
                state[visited] = 2

    def ancestors(self, span_id: str) -> list[str]:
        out: list[str] = []
        node = self.parent.get(span_id)
        while node is not None and len(out) < len(self.spans):
            out.append(node)
            node = self.parent.get(node)
        return out


def _exact_errors(t: _Trace) -> tuple[list[ErrorPath], set[str]]:
    by_id: dict[str, list[Span]] = defaultdict(list)
    absorbed: dict[str, list[str]] = defaultdict(list)
    for span in t.spans.values():
        eid = span.attributes.get(sc.ATTR_ID)
        role = span.attributes.get(sc.ATTR_ROLE)
        if isinstance(eid, str) and role in (sc.ROLE_ORIGIN, sc.ROLE_PROPAGATED):
            by_id[eid].append(span)
        for event in span.events:
            hid = event.attributes.get(sc.ATTR_ID)
            if event.name == sc.EVENT_HANDLED and isinstance(hid, str):
                absorbed[hid].append(span.span_id)
    paths: list[ErrorPath] = []
    covered: set[str] = set()
    for eid, members in by_id.items():
        depth = {s.span_id: len(t.ancestors(s.span_id)) for s in members}
        members.sort(key=lambda s: (-depth[s.span_id], s.start_ns))
        origins = [s for s in members if s.attributes.get(sc.ATTR_ROLE) == sc.ROLE_ORIGIN]
        origin = origins[0] if origins else members[0]
        props = [s.span_id for s in members if s is not origin]
        covered.update(s.span_id for s in members)
        etype, message = _exception_info(origin)
        path = ErrorPath(
            trace_id=t.trace_id,
            origin=origin.span_id,
            error_id=eid,
            kind=str(origin.attributes.get(sc.ATTR_KIND, "UNKNOWN")),
            code=str(origin.attributes.get(sc.ATTR_CODE, "")),
            error_type=str(origin.attributes.get(sc.ATTR_ERROR_TYPE, etype)),
            message=message,
            propagators=props,
            exact=True,
            cause_id=origin.attributes.get(sc.ATTR_CAUSE_ID),
            metadata={
                k.removeprefix(sc.ATTR_META_PREFIX): v
                for k, v in origin.attributes.items()
                if k.startswith(sc.ATTR_META_PREFIX)
            },
        )
        if not origins:
            remote_span = origin.attributes.get(sc.ATTR_ORIGIN_SPAN_ID)
            remote_trace = origin.attributes.get(sc.ATTR_ORIGIN_TRACE_ID, t.trace_id)
            if isinstance(remote_span, str) and remote_span not in t.spans:
                path.remote_origin = (str(remote_trace), remote_span)
        top = path.propagators[-1] if path.propagators else path.origin
        handled_here = [s for s in absorbed.get(eid, []) if s not in covered]
        _finish(t, path, top, handled_here[0] if handled_here else None)
        paths.append(path)
    return paths, covered


def _finish(t: _Trace, path: ErrorPath, top: str, marked_absorber: str | None) -> None:
    if marked_absorber is not None:
        path.absorber = marked_absorber
        return
    parent = t.parent.get(top)
    if parent is None:
        path.escaped = True
    else:
        path.absorber = parent


def _inferred_errors(t: _Trace, covered: set[str]) -> list[ErrorPath]:
    errored = {sid for sid, s in t.spans.items() if s.error and sid not in covered}
    paths = []
    for sid in errored:
        if any(child in errored for child in t.children.get(sid, [])):
            continue  # not the deepest: an errored child is closer to the origin
        span = t.spans[sid]
        etype, message = _exception_info(span)
        path = ErrorPath(
            trace_id=t.trace_id,
            origin=sid,
            error_id=span.attributes.get(sc.ATTR_ID)
            if isinstance(span.attributes.get(sc.ATTR_ID), str)
            else None,
            kind=str(span.attributes.get(sc.ATTR_KIND, "UNKNOWN")),
            error_type=etype,
            message=message,
        )
        top = sid
        for ancestor in t.ancestors(sid):
            if ancestor not in errored:
                break
            path.propagators.append(ancestor)
            top = ancestor
        _finish(t, path, top, None)
        paths.append(path)
    # Two siblings failing up one errored parent would give the parent twice; keep both paths.
    return sorted(paths, key=lambda p: t.spans[p.origin].start_ns)


def _retries(t: _Trace) -> list[RetryGroup]:
    groups = []
    for parent, kids in [(None, t.roots), *t.children.items()]:
        by_name: dict[str, list[str]] = defaultdict(list)
        for kid in kids:
            by_name[t.spans[kid].name].append(kid)
        for name, same in by_name.items():
            failed = sum(1 for s in same if t.spans[s].error)
            if len(same) >= 2 and failed:
                groups.append(
                    RetryGroup(parent, name, same, failed, succeeded=not t.spans[same[-1]].error)
                )
    return groups


def analyse(spans: SpanSet | Iterable[Span]) -> list[TraceAnalysis]:
    """Analyse every trace in `spans`; problems are listed, never raised. The input's own
    problems (``SpanSet.problems``) are listed first on the first trace; when no trace is
    found they stay only in the `SpanSet`, so callers must show those too."""
    span_set = spans if isinstance(spans, SpanSet) else SpanSet(list(spans))
    by_trace: dict[str, list[Span]] = defaultdict(list)
    for span in span_set.spans:
        by_trace[span.trace_id].append(span)
    results = []
    for trace_id, members in by_trace.items():
        problems: list[str] = []
        t = _Trace(trace_id, members, problems)
        exact, covered = _exact_errors(t)
        errors = exact + _inferred_errors(t, covered)
        results.append(
            TraceAnalysis(
                trace_id=trace_id,
                spans=t.spans,
                children=dict(t.children),
                roots=t.roots,
                errors=errors,
                async_edges=t.async_edges,
                retries=_retries(t),
                problems=problems,
            )
        )
    if span_set.problems and results:
        results[0].problems[:0] = span_set.problems
    return results


@dataclasses.dataclass(slots=True)
class FlowGraph:
    """Service/operation-level error flow across many traces."""

    edges: Counter[tuple[str, str]] = dataclasses.field(default_factory=Counter)
    edge_kinds: dict[tuple[str, str], Counter[str]] = dataclasses.field(default_factory=dict)
    origins: Counter[str] = dataclasses.field(default_factory=Counter)
    escaped: Counter[str] = dataclasses.field(default_factory=Counter)
    absorbed: Counter[str] = dataclasses.field(default_factory=Counter)


def _node(span: Span) -> str:
    return f"{span.service}: {span.name}"


def flow_graph(analyses: Iterable[TraceAnalysis]) -> FlowGraph:
    """Which service/operation's errors reach which, with counts, kinds and top origins."""
    graph = FlowGraph()
    for analysis in analyses:
        for err in analysis.errors:
            chain = [analysis.spans[s] for s in [err.origin, *err.propagators, err.absorber] if s]
            graph.origins[_node(chain[0])] += 1
            for a, b in itertools.pairwise(chain):
                edge = (_node(a), _node(b))
                if edge[0] == edge[1]:
                    continue
                graph.edges[edge] += 1
                graph.edge_kinds.setdefault(edge, Counter())[err.kind] += 1
            if err.escaped:
                graph.escaped[_node(chain[-1])] += 1
            elif err.absorber:
                graph.absorbed[_node(analysis.spans[err.absorber])] += 1
    return graph
