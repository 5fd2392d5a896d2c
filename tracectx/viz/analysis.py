"""Rebuild error propagation paths from spans.

Per trace, each error gets an *origin*, the *propagators* it climbed through and an *outcome*:
``absorbed`` by a span that caught it, ``escaped`` past the top of the trace (or of an async
consumer), or ``unobserved`` (fire-and-forget work nobody waited for).

Exact when spans carry tracectx error ids (`tracectx.contract.read_contract` reads them): the id
is followed across spans, processes and traces, handled and retry marks name the absorber, and
``raise New from old`` (a ``cause_id`` naming an error born just below) is followed as one path.

Otherwise (plain OTel: status and ``exception`` events) each failing span is weighed against
its failing children with what a plain trace carries, and every decision is kept as evidence
with a confidence:

- same exception type and message above and below: propagation;
- the parent's stack says its exception was raised *from* the child's (``direct cause``,
  ``Caused by:``): translation, followed; raised *while handling* it: a new error of the parent's
  (absorb-then-fail), the child's absorbed;
- a child that failed and was followed by more work of its parent (a later sibling started
  after it ended, e.g. the next attempt of a retry group) was caught: absorbed, never continued;
- a retry group is a run of same-named siblings that ran one at a time (overlapping ones are a
  fan-out), from a failure to the first success; an attempt whose error the parent failed with
  ends it (the parent raised that error) unless the next attempt failed alike or the spans mark
  retries (a ``tracectx.retry`` event, an attempt number);
- a client span answered with an HTTP or gRPC error status continues into the caller's error;
- no stack and another exception type: the parent's error translates the child's when its
  message names the child's error or it failed right after the child; a parent that failed
  long after (over 1.5 ms and 40 % of its time) failed for a reason of its own;
- HTTP by OTel's conventions: 5xx (or a gRPC error) is an error on both sides, 4xx only on a
  CLIENT span; a SERVER span that answered 4xx is no error, only the origin of its client's
  error (a readiness probe answering 404 is nothing); an explicit status wins;
- fire-and-forget by structure: a child that ended after its parent, or that its parent did not
  wait for (it started other work while the child ran and did not fail with its error), is
  unobserved, not absorbed. A ``thread …``/``task …`` name alone decides nothing (awaited work
  is named so too), except on tracectx's own failure span of a thread or an unretrieved task.

A failed consumer run that ran again (a Celery retry linked to it, a redelivery of the same
message) or was handed to a dead-letter queue is absorbed by that retry or hand-off, as an
in-process retry is; only the last run's error escapes.

Async hops (links, FOLLOWS_FROM, producer→consumer) are not blocking: an error on the consuming
side is its own origin connected by an async edge, never blamed on the producer. The analysis is
linear in the number of spans: each span's children are weighed once, paths climb parents.
"""

from __future__ import annotations

import bisect
import dataclasses
import heapq
import itertools
import operator
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

from tracectx import semconv as sc
from tracectx.contract import ContractView, read_contract
from tracectx.viz.model import Span, SpanSet

__all__ = [
    "OUTCOMES",
    "AsyncEdge",
    "ErrorPath",
    "FlowGraph",
    "RetryGroup",
    "TraceAnalysis",
    "analyse",
    "flow_graph",
]

OUTCOMES = ("absorbed", "escaped", "unobserved")


@dataclasses.dataclass(slots=True)
class ErrorPath:
    """One error's journey through a trace.

    `outcome` is ``absorbed`` (`absorber` is the span that caught it), ``escaped`` (it left the
    top of the trace or of an async consumer; `escaped` is True) or ``unobserved`` (it ended
    fire-and-forget work nobody waited for: no absorber). `exact` is True when tracectx error
    ids gave the path; `confidence` (0-1) says how sure an inferred path is, and `evidence`
    lists, in words, what each step was decided on.
    """

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
    outcome: str = "escaped"
    confidence: float = 1.0
    evidence: list[str] = dataclasses.field(default_factory=list)

    @property
    def span_ids(self) -> list[str]:
        path = [self.origin, *self.propagators]
        return path + ([self.absorber] if self.absorber else [])

    @property
    def top(self) -> str:
        """The last span the error left."""
        return self.propagators[-1] if self.propagators else self.origin


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


def _sort_by_start(ids: list[str], by_id: dict[str, Span]) -> None:
    """Sort span ids by start time, stably, in place. Spans mostly come in start order (the
    stream sorts them so), and testing that costs less than a key call per span."""
    starts = [by_id[s].start_ns for s in ids]
    if any(map(operator.gt, starts, itertools.islice(starts, 1, None))):
        ids.sort(key=lambda s: by_id[s].start_ns)


# A span event as read_contract's (name, attributes) pair, made in C: a list comprehension of
# pairs costs a frame per contract view.
_event_pair = operator.attrgetter("name", "attributes")


class _Trace:
    """Index of one trace's spans: blocking parents/children, async edges, problems, the spans
    that fail, and the contract view of a span, read only when asked for (once)."""

    def __init__(self, trace_id: str, spans: list[Span], problems: list[str]) -> None:
        self.trace_id = trace_id
        self.spans: dict[str, Span] = {s.span_id: s for s in spans}
        if len(self.spans) != len(spans):
            self.spans = self._first_copies(spans, problems)
        self.parent: dict[str, str] = {}  # blocking parent
        self.children: dict[str, list[str]] = defaultdict(list)
        self.async_edges: list[AsyncEdge] = []
        self.roots: list[str] = []
        self.failing: list[str] = []  # failing spans, in span order (4xx servers last)
        self.failing_set: set[str] = set()
        self.tracectx: list[str] = []  # spans carrying a tracectx error id or any event
        self._views: dict[str, ContractView] = {}
        self._next_runs: dict[str, str] | None = None  # `next_run`'s index, made on first use
        self._starts: dict[str, list[int]] = {}  # `starts`, by parent asked
        by_id = self.spans
        roots, failing, tracectx = self.roots, self.failing, self.tracectx
        parents, children = self.parent, self.children
        attr_id = sc.ATTR_ID
        answered_4xx: list[str] = []  # server spans that answered 4xx with no error status
        for sid, span in by_id.items():
            pid = span.parent_id
            parent = by_id.get(pid) if pid else None
            if parent is None:
                if pid:
                    problems.append(f"trace {trace_id}: span {sid} has missing parent {pid}")
                roots.append(sid)
            elif pid == sid:
                problems.append(f"trace {trace_id}: span {sid} is its own parent, shown as a root")
                roots.append(sid)
            elif span.kind == "consumer" and parent.kind == "producer":
                self.async_edges.append(AsyncEdge(parent.span_id, sid, "messaging"))
                roots.append(sid)
            else:
                parents[sid] = pid = parent.span_id
                children[pid].append(sid)
            if span.links:
                for link in span.links:
                    self.async_edges.append(
                        AsyncEdge(link.span_id, sid, "link", source_trace=link.trace_id)
                    )
            if span.error:
                failing.append(sid)
            elif span.kind in _ANSWERING:
                answer = _answer(span)
                if answer == _FAILED:
                    failing.append(sid)
                elif answer == _CLIENT_ERROR:
                    answered_4xx.append(sid)
            if span.events or attr_id in span.attributes:
                tracectx.append(sid)
        self._break_cycles(problems)
        self.failing_set = set(failing)
        for sid in answered_4xx:  # a 4xx server: only its client's error (HTTP conventions)
            pid = parents.get(sid)
            if pid is not None and pid in self.failing_set and by_id[pid].kind == "client":
                failing.append(sid)
                self.failing_set.add(sid)
        for kids in self.children.values():
            if len(kids) > 1:
                _sort_by_start(kids, by_id)
        if len(self.roots) > 1:
            _sort_by_start(self.roots, by_id)

    def _first_copies(self, spans: list[Span], problems: list[str]) -> dict[str, Span]:
        """Spans by id when some id comes twice: the copy with the error, else the first."""
        trace_id = self.trace_id
        out: dict[str, Span] = {}
        for span in spans:
            kept = out.get(span.span_id)
            if kept is None:
                out[span.span_id] = span
                continue
            if span.error and not kept.error:  # the copy that carries the error tells more
                out[span.span_id] = span
                which = "kept the copy with the error"
            else:
                which = "kept the first copy"
            problems.append(f"trace {trace_id}: duplicate span id {span.span_id}, {which}")
        return out

    def view(self, span_id: str) -> ContractView:
        """The contract view of a span, read on first use."""
        view = self._views.get(span_id)
        if view is None:
            s = self.spans[span_id]
            events = map(_event_pair, s.events) if s.events else ()
            view = read_contract(s.attributes, events, s.status_message)
            self._views[span_id] = view
        return view

    def starts(self, span_id: str) -> list[int]:
        """The start times of `span_id`'s children, in order (made once per parent asked)."""
        found = self._starts.get(span_id)
        if found is None:
            spans = self.spans
            found = self._starts[span_id] = [spans[k].start_ns for k in self.children[span_id]]
        return found

    def next_run(self, span_id: str) -> str | None:
        """The consumer run that took over `span_id`'s message after it: a later run linking
        to it (a Celery retry), else the next run of the same message (same producer, name,
        service and consumer group, message id if both say one) started after it ended (a
        redelivery). The index is made on the first call: only an escaping consumer asks."""
        if self._next_runs is None:
            self._next_runs = self._index_runs()
        return self._next_runs.get(span_id)

    def _index_runs(self) -> dict[str, str]:
        spans = self.spans
        runs: dict[tuple[Any, ...], list[Span]] = defaultdict(list)
        out: dict[str, str] = {}
        for span in spans.values():
            if span.kind != "consumer":
                continue
            for link in span.links:
                before = spans.get(link.span_id)
                if (
                    before is not None
                    and before.kind == "consumer"
                    and before.start_ns < span.start_ns  # later: never itself, never a loop
                    and link.span_id not in out
                ):
                    out[link.span_id] = span.span_id
            if span.parent_id:
                attrs = span.attributes
                group = attrs.get("messaging.consumer.group.name")
                runs[(span.parent_id, span.name, span.service, str(group))].append(span)
        for same in runs.values():
            if len(same) < 2:
                continue
            same.sort(key=operator.attrgetter("start_ns"))
            for i, run in enumerate(same):
                if run.span_id in out:
                    continue
                message = run.attributes.get("messaging.message.id")
                for later in same[i + 1 :]:
                    other = later.attributes.get("messaging.message.id")
                    if later.start_ns >= run.end_ns and (
                        message is None or other is None or message == other
                    ):
                        out[run.span_id] = later.span_id
                        break
        return out

    def has_error(self, span_id: str) -> bool:
        """True if tracectx recorded an error on the span (`ContractView.has_error`)."""
        return sc.ATTR_ID in self.spans[span_id].attributes and self.view(span_id).has_error

    def _break_cycles(self, problems: list[str]) -> None:
        """Cut parent cycles. Every span is reached from a root unless it sits in or under a
        cycle, so only the spans a walk down from the roots misses are searched."""
        reached = list(self.roots)
        children = self.children
        for above in reached:  # grows while it is walked: every span under the roots
            kids = children.get(above)
            if kids:
                reached.extend(kids)
        if len(reached) == len(self.spans):
            return
        seen = set(reached)
        state: dict[str, int] = {}
        for start in [s for s in self.parent if s not in seen]:
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

    def label(self, span_id: str) -> str:
        span = self.spans[span_id]
        return f"{span.service}: {span.name}"


# -- what one span says on its own -------------------------------------------------------------

_DETACHED_NAME = re.compile(r"^(thread |task |Task-\d+$)")
_CAUSE_MARK = "The above exception was the direct cause of the following exception:"
_CONTEXT_MARK = "During handling of the above exception, another exception occurred:"
_STATUS_SIG = re.compile(
    r"^([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Warning)?): (.*)$", re.S
)


_STATUS_KEYS = ("http.response.status_code", "http.status_code")


def _status_code(span: Span) -> int | None:
    attributes = span.attributes
    for key in _STATUS_KEYS:
        value = attributes.get(key)
        if value is None:
            continue
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and value.isdigit():
            return int(value)
    return None


def _rpc_failed(span: Span) -> bool:
    value = span.attributes.get("rpc.grpc.status_code")
    return isinstance(value, int) and not isinstance(value, bool) and value != 0


_ANSWERING = ("server", "client")  # the kinds whose answer (HTTP or gRPC status) can fail
_FAILED, _CLIENT_ERROR = 2, 1  # what `_answer` says (0: the answer says nothing failed)


def _answer(span: Span) -> int:
    """What a server or client span's answer says, by OTel's HTTP conventions: a 5xx (or a gRPC
    error) failed on both sides; a 4xx failed on a CLIENT span and is no error of a SERVER span
    (`_CLIENT_ERROR`: it is only the origin of its client's error, if the client failed). An
    explicit OK status (Jaeger's ``otel.status_code``) wins over the code."""
    code = span.attributes.get("http.response.status_code")
    if code.__class__ is not int:  # the usual form read at once; the rest as `_status_code` does
        code = _status_code(span)
    if code is None:
        return _FAILED if _rpc_failed(span) else 0
    if code < 400 or span.attributes.get("otel.status_code") == "OK":
        return 0
    if code >= 500 or span.kind == "client":
        return _FAILED
    return _CLIENT_ERROR


def _short_type(name: str) -> str:
    return name.rsplit(".", 1)[-1].strip()


Signature = tuple[str, str]  # (short exception type, message)


def _own_event(span: Span) -> bool:
    """True if `span`'s last exception event may be the error that left it: always, but on a
    server span that only answered 4xx (no error status), whose recorded exceptions were turned
    into the answer, unless the event says ``exception.escaped``."""
    if span.error or span.kind != "server" or _answer(span) != _CLIENT_ERROR:
        return True
    last = next((e for e in reversed(span.events) if e.name == sc.EVENT_EXCEPTION), None)
    return last is not None and str(last.attributes.get("exception.escaped", "")).lower() == "true"


def _signature(span: Span, view: ContractView) -> Signature | None:
    """The (type, message) of the error that left `span`: its last exception event, else its
    status message when that reads ``Type: message``."""
    if view.exception_type and _own_event(span):
        return _short_type(view.exception_type), view.exception_message
    match = _STATUS_SIG.match(span.status_message)
    if match:
        return _short_type(match.group(1)), match.group(2)
    return None


def _caught(span: Span, failing: bool) -> set[Signature]:
    """The (type, message) of exceptions `span` recorded and did not let out: every exception
    event of a span that did not fail, all but the last of one that did."""
    found = [
        (
            _short_type(str(e.attributes.get(sc.EXC_TYPE, ""))),
            str(e.attributes.get(sc.EXC_MESSAGE, "")),
        )
        for e in span.events
        if e.name == sc.EVENT_EXCEPTION
    ]
    if found and failing and _own_event(span):
        found.pop()
    return set(found)


def _chain(stack: str) -> tuple[str, Signature] | None:
    """What the stack says the last exception came from: (``cause`` | ``context``, signature)
    of the one before it (Python's chained traceback, or a Java-style ``Caused by:``)."""
    at_cause, at_context = stack.rfind(_CAUSE_MARK), stack.rfind(_CONTEXT_MARK)
    if at_cause >= 0 or at_context >= 0:
        how = "cause" if at_cause > at_context else "context"
        before = stack[: max(at_cause, at_context)].rstrip().splitlines()
        last = before[-1] if before else ""
        type_name, _, message = last.partition(": ")
        return how, (_short_type(type_name), message.strip())
    at = stack.find("Caused by: ")
    if at >= 0:
        line = stack[at + len("Caused by: ") :].splitlines()[0]
        type_name, _, message = line.partition(": ")
        return "cause", (_short_type(type_name), message.strip())
    return None


def _left_behind(t: _Trace, child: Span, parent: Span) -> str | None:
    """Why `child` was surely never waited for in `parent` (it ended after `parent`), or None."""
    if child.end_ns > parent.end_ns:
        return f"{t.label(child.span_id)} ended after {t.label(parent.span_id)}: never waited for"
    return None


def _unjoined(t: _Trace, child: Span, parent: Span) -> tuple[float, str] | None:
    """(confidence, why) when the timing says `parent` did not wait for `child`: it started other
    work while `child` still ran. Only asked once the parent's outcome (its failure with the
    child's error, or a record of catching it) did not show a join. A ``task …``/``thread …``
    name adds a little; alone it decides nothing (plain-OTel users name awaited work so too)."""
    kids = t.children.get(parent.span_id, ())
    starts = t.starts(parent.span_id)  # kids are in start order: the next start after its own
    at = bisect.bisect_right(starts, child.start_ns)
    if at == len(starts) or starts[at] >= child.end_ns:
        return None
    alongside, sid, spans = kids[at], child.span_id, t.spans
    named = _DETACHED_NAME.match(child.name) is not None
    why = (
        f"{t.label(parent.span_id)} started {spans[alongside].name} while "
        f"{t.label(sid)} still ran and did not fail with its error: not joined"
    )
    if named:
        why += " (its name says fire-and-forget work too)"
    return (0.8 if named else 0.7), why


def _tracectx_failure_span(t: _Trace, child: Span) -> str | None:
    """Why `child` is the span tracectx gives the error of a thread or of an asyncio task
    nobody retrieved (``thread …``/``task …``, the error's origin, no children), or None. Only
    tracectx makes such spans on those paths, so its own name is strong evidence there."""
    sid = child.span_id
    if (
        not _DETACHED_NAME.match(child.name)
        or sid in t.children
        or sc.ATTR_ID not in child.attributes
        or t.view(sid).role != sc.ROLE_ORIGIN
    ):
        return None
    what = "thread" if child.name.startswith("thread ") else "task"
    return f"{t.label(sid)} is tracectx's span for a failed {what} nobody joined"


# -- exact paths: tracectx error ids -----------------------------------------------------------


def _exact_errors(t: _Trace) -> tuple[list[ErrorPath], set[str]]:
    by_id: dict[str, list[str]] = defaultdict(list)
    attr_id, spans = sc.ATTR_ID, t.spans
    for sid in t.tracectx:
        if attr_id in spans[sid].attributes:  # `_Trace.has_error`, the view read once
            view = t.view(sid)
            if view.has_error:
                by_id[view.error_id].append(sid)
    if not by_id:
        return [], set()
    marked: dict[str, tuple[str, str]] = {}  # error id -> (absorbing span, why)
    for sid in t.tracectx:
        view = t.view(sid)
        for hmark in view.handled:
            marked.setdefault(hmark.error_id, (sid, "a handled mark names it"))
        for rmark in view.retries:
            if rmark.error_id:
                marked.setdefault(
                    rmark.error_id, (sid, f"retried (attempt {rmark.attempt} failed)")
                )
    depth: dict[str, int] = {}
    paths: list[ErrorPath] = []
    covered: set[str] = set()
    for eid, members in by_id.items():
        for sid in members:
            if sid not in depth:
                depth[sid] = len(t.ancestors(sid))
        members.sort(key=lambda s: (-depth[s], t.spans[s].start_ns))
        origins = [s for s in members if t.view(s).role == sc.ROLE_ORIGIN]
        origin = origins[0] if origins else members[0]
        view = t.view(origin)
        path = ErrorPath(
            trace_id=t.trace_id,
            origin=origin,
            error_id=eid,
            kind=view.kind or "UNKNOWN",
            code=view.code,
            error_type=view.error_type,
            message=view.exception_message,
            exact=True,
            cause_id=view.cause_id or None,
            metadata=dict(view.metadata),
            evidence=[f"tracectx error id {eid}"],
        )
        if not origins and view.origin_span_id and view.origin_span_id not in t.spans:
            path.remote_origin = (view.origin_trace_id or t.trace_id, view.origin_span_id)
            path.evidence.append("born in a span outside this trace")
        rest = set(members) - {origin}
        node = origin
        while True:  # climb to the highest member, and on through failing spans that carry it
            up = t.parent.get(node)  # without a tracectx record (an HTTP client's span)
            if up is None:
                break
            carries = up in rest or (not t.has_error(up) and up in t.failing_set)
            if not carries and not rest:
                break
            path.propagators.append(up)
            rest.discard(up)
            node = up
        for sid in rest:  # not above the origin (another process's copy): keep them listed
            path.propagators.append(sid)
        covered.add(origin)
        covered.update(path.propagators)
        paths.append(path)
    survivors = _follow_causes(t, paths)
    for last_id, path in survivors.items():
        _finish_exact(t, path, marked.get(last_id))
    return list(survivors.values()), covered


def _follow_causes(t: _Trace, paths: list[ErrorPath]) -> dict[str, ErrorPath]:
    """Merge ``raise New from old``: a path whose origin names as cause an error that left the
    span just below it continues that error's path (one origin, the translation in evidence).
    Returns the surviving paths by the id of the error that last left them."""
    if not any(p.cause_id for p in paths):  # nothing to merge (the common case)
        return {p.error_id or "": p for p in paths}
    by_id = {p.error_id or "": p for p in paths}
    last = {id(p): p.error_id or "" for p in paths}
    depth = {p.origin: len(t.ancestors(p.origin)) for p in paths}
    merged: set[int] = set()
    for path in sorted(paths, key=lambda p: -depth[p.origin]):  # inner translations first
        below = by_id.get(path.cause_id or "")
        if below is None or below is path or t.parent.get(below.top) != path.origin:
            continue
        merged.add(id(path))
        below.propagators += [path.origin, *path.propagators]
        below.evidence.append(
            f"translated at {t.label(path.origin)}: {_short_type(below.error_type)} raised as "
            f"{_short_type(path.error_type)} (error id {path.error_id}, cause {path.cause_id})"
        )
        by_id[path.error_id or ""] = below
        last[id(below)] = path.error_id or ""
    return {last[id(p)]: p for p in paths if id(p) not in merged}


def _finish_exact(t: _Trace, path: ErrorPath, mark: tuple[str, str] | None) -> None:
    if mark is not None and mark[0] not in path.propagators and mark[0] != path.origin:
        _set_outcome(path, "absorbed", mark[0])
        path.evidence.append(f"absorbed by {t.label(mark[0])}: {mark[1]}")
        return
    _finish_by_position(t, path, 0.9, "caught without a handled mark")


def _finish_by_position(t: _Trace, path: ErrorPath, confidence: float, why: str) -> None:
    """Outcome from where the error's top span sits: a root lets it escape; else its parent
    caught it, unless nobody waited for the top span."""
    top = path.top
    parent = t.parent.get(top)
    if parent is None:
        taken = _taken_over(t, top)
        if taken is not None:
            _set_outcome(path, "absorbed", taken[0])
            path.evidence.append(f"absorbed by {t.label(taken[0])}: {taken[1]}")
            return
        _set_outcome(path, "escaped", None)
        kind = t.spans[top].kind
        where = (
            "an async consumer" if kind == "consumer" and t.spans[top].parent_id else "the trace"
        )
        path.evidence.append(f"escaped: {t.label(top)} is the top of {where}")
        return
    span, above = t.spans[top], t.spans[parent]
    detached = _left_behind(t, span, above) or _tracectx_failure_span(t, span)
    unjoined = None if detached else _unjoined(t, span, above)
    if detached or unjoined:
        sure, why_not = (0.9, detached) if detached else unjoined  # type: ignore[misc]
        _set_outcome(path, "unobserved", None)
        path.evidence.append(f"unobserved: {why_not}")
        path.confidence *= sure
        return
    _set_outcome(path, "absorbed", parent)
    path.evidence.append(f"absorbed by {t.label(parent)}: {why}")
    path.confidence *= confidence


_DEAD_LETTER = re.compile(r"(?i)(dlq|dlt|dead[._ -]?letter)")


def _taken_over(t: _Trace, top: str) -> tuple[str, str] | None:
    """(absorber, why) when the failed consumer run `top` was handed on: run again by a retry
    or a redelivery (the later run absorbs it, as an in-process retry does), or sent to a
    dead-letter queue (its consumer, else the send, absorbs it). None otherwise: it escaped."""
    span = t.spans[top]
    if span.kind != "consumer":
        return None
    after = t.next_run(top)
    if after is not None:
        runs = [top, after]
        while len(runs) <= len(t.spans) and (more := t.next_run(runs[-1])) is not None:
            if more in runs:
                break
            runs.append(more)
        last = runs[-1]
        recovered = "recovered" if last not in t.failing_set else "did not recover"
        how = "a retry" if any(lk.span_id == top for lk in t.spans[after].links) else "redelivery"
        return after, (f"retried: {t.label(top)} ran again ({how}; {len(runs)} runs, {recovered})")
    for kid in t.children.get(top, ()):
        send = t.spans[kid]
        if send.kind != "producer":
            continue
        queue = str(send.attributes.get("messaging.destination.name", send.name))
        if _DEAD_LETTER.search(queue):
            consumer = next(
                (
                    e.target
                    for e in t.async_edges
                    if e.kind == "messaging" and e.source == kid and e.target != top
                ),
                None,
            )
            return consumer or kid, f"handed to the dead-letter queue {queue}"
    return None


def _set_outcome(path: ErrorPath, outcome: str, absorber: str | None) -> None:
    path.outcome = outcome
    path.absorber = absorber
    path.escaped = outcome == "escaped"


# -- inferred paths: plain OTel ----------------------------------------------------------------


@dataclasses.dataclass(slots=True)
class _Fate:
    """What became of a failing child's error in its parent."""

    how: str  # "continued" / "absorbed" / "unobserved"
    confidence: float
    why: str


def _weigh_children(
    t: _Trace, pid: str, failing: set[str], retried: dict[str, str]
) -> dict[str, _Fate]:
    """The fate of each failing child of `pid`: at most one continues into the parent's error."""
    parent = t.spans[pid]
    kids = t.children.get(pid, [])
    bad = [k for k in kids if k in failing]
    if not bad:
        return {}
    fates: dict[str, _Fate] = {}
    caught = _caught(parent, pid in t.failing_set)
    starts = heapq.nlargest(2, [t.spans[k].start_ns for k in kids])
    candidates: list[str] = []
    parent_failing = pid in failing
    for kid in bad:
        span = t.spans[kid]
        left = _left_behind(t, span, parent)
        if left:
            fates[kid] = _Fate("unobserved", 0.9, left)
            continue
        if kid in retried:
            fates[kid] = _Fate("absorbed", 0.95, retried[kid])
            continue
        sig = _signature(span, t.view(kid))
        if sig in caught:
            fates[kid] = _Fate("absorbed", 0.95, f"{t.label(pid)} recorded it as caught")
            continue
        if parent_failing and _fails_with(t, pid, sig):
            candidates.append(kid)  # the parent failed with its error: it was joined
            continue
        unjoined = _unjoined(t, span, parent)
        if unjoined:
            fates[kid] = _Fate("unobserved", *unjoined)
            continue
        later = [s for s in starts if s >= span.end_ns and s > span.start_ns]
        if later:
            fates[kid] = _Fate(
                "absorbed", 0.9, f"{t.label(pid)} went on with more work after it failed"
            )
            continue
        candidates.append(kid)
    chosen: tuple[str, _Fate] | None = None
    own: dict[str, str] = {}
    if parent_failing and candidates:
        chosen = _continuation(t, pid, candidates, own)
    for kid in candidates:
        if chosen is not None and kid == chosen[0]:
            fates[kid] = chosen[1]
            continue
        if not parent_failing:
            fates[kid] = _Fate("absorbed", 0.85, f"{t.label(pid)} did not fail")
        else:
            why = own.get(kid, f"{t.label(pid)} failed with an error of its own")
            fates[kid] = _Fate("absorbed", 0.75, why)
    for kid, fate in fates.items():
        if fate.how != "unobserved" and _DETACHED_NAME.match(t.spans[kid].name):
            fate.why += " (named like fire-and-forget work, but waited for)"
    return fates


def _fails_with(t: _Trace, pid: str, sig: Signature | None) -> bool:
    """True if the failing span `pid` failed with the error `sig` (same type and message), or
    its stack says its error came from it."""
    if sig is None:
        return False
    view = t.view(pid)
    if _signature(t.spans[pid], view) == sig:
        return True
    chain = _chain(view.stack) if view.stack else None
    return chain is not None and chain[1][0] == sig[0] and chain[1][1] in ("", sig[1])


def _names(psig: Signature, sig: Signature) -> bool:
    """True if the parent's error message names the child's error (its type or its message),
    as a translation's often does (``raise Unavailable(f"... {exc!r}") from exc``)."""
    return sig[0] in psig[1] or (len(sig[1]) >= 4 and sig[1] in psig[1])


_QUICK_NS = 1_500_000  # a translation raises at once; a parent that went on longer ...
_QUICK_SHARE = 0.4  # ... (and for this share of its own time) failed for a reason of its own


def _late(parent: Span, child: Span) -> int | None:
    """How long (ns) after `child` ended `parent` failed, when that is too long for a
    translation; else None. The failure is the parent's last exception event when it has a
    time inside the parent, else the parent's end."""
    failed = parent.end_ns
    for event in reversed(parent.events):
        if event.name == sc.EVENT_EXCEPTION:
            if event.time_ns is not None and child.end_ns <= event.time_ns <= parent.end_ns:
                failed = event.time_ns
            break
    gap = failed - child.end_ns
    duration = max(parent.end_ns - parent.start_ns, 1)
    return gap if gap > _QUICK_NS and gap > _QUICK_SHARE * duration else None


def _own_verdict(t: _Trace, parent: Span, child: Span, code: int | None) -> str | None:
    """Why a server that answered 4xx (the request's fault) gave its own verdict rather than
    `child`'s error, or None: a call it made failed otherwise (a dependency's failure that
    escapes is answered 5xx; a 4xx passed on keeps its code)."""
    answered = _status_code(parent)
    if child.kind != "client" or code == answered:
        return None
    what = f"answered {code}" if code is not None else "failed"
    return (
        f"{t.label(parent.span_id)} answered {answered} (the request's fault) after "
        f"{t.label(child.span_id)} {what}: its own verdict"
    )


def _own_answer(t: _Trace, parent: Span, child: Span, code: int | None) -> str | None:
    """Why a parent that failed with nothing to say (no exception, no status message) failed
    for a reason of its own rather than with `child`'s error, or None: it failed long after
    the child ended."""
    late = _late(parent, child)
    if late is None:
        return None
    return (
        f"{t.label(parent.span_id)} failed {late / 1e6:.3g} ms after {t.label(child.span_id)} "
        "ended: an error of its own"
    )


def _continuation(
    t: _Trace, pid: str, candidates: list[str], own: dict[str, str]
) -> tuple[str, _Fate] | None:
    """Which candidate child's error (if any) the failing parent's error continues; `own`
    gets, by child, why the parent's error was read as one of its own."""
    parent = t.spans[pid]
    view = t.view(pid)
    psig = _signature(parent, view)
    chain = _chain(view.stack) if view.stack else None
    best: tuple[float, str, _Fate] | None = None
    answered_4xx = _answer(parent) == _CLIENT_ERROR

    def offer(kid: str, fate: _Fate) -> None:
        nonlocal best
        rank = (fate.confidence if fate.how == "continued" else 0.0) + t.spans[kid].end_ns * 1e-30
        if best is None or rank > best[0]:
            best = (rank, kid, fate)

    for kid in candidates:
        child = t.spans[kid]
        sig = _signature(child, t.view(kid))
        code = _status_code(child)
        http_error = child.kind == "client" and code is not None and code >= 400
        label = t.label(kid)
        verdict = _own_verdict(t, parent, child, code) if answered_4xx else None
        if verdict is not None and (psig is None or psig != sig):
            own[kid] = verdict
            continue
        if (
            child.kind == "server"
            and parent.kind == "client"
            and code is not None
            and code >= 400
            and code == _status_code(parent)
        ):
            offer(kid, _Fate("continued", 0.95, f"the answer HTTP {code} of {label}"))
        elif psig is not None and sig is not None and psig == sig:
            offer(kid, _Fate("continued", 0.95, f"same {sig[0]} and message as {label}"))
        elif (
            chain is not None
            and sig is not None
            and chain[1][0] == sig[0]
            and (not chain[1][1] or not sig[1] or chain[1][1] == sig[1])
        ):
            if chain[0] == "cause":
                offer(kid, _Fate("continued", 0.95, f"raised from {label}'s {sig[0]} (stack)"))
            else:
                return None  # raised while handling the child's: a new error, the child's caught
        elif http_error and chain is not None and _about_http(chain[1], code or 0):
            if chain[0] != "cause":
                return None  # raised while handling the answer: a new error
            offer(kid, _Fate("continued", 0.9, f"raised from {label}'s HTTP {code} (stack)"))
        elif http_error and _about_http(psig, code or 0):
            offer(kid, _Fate("continued", 0.9, f"{label} answered HTTP {code}"))
        elif child.kind == "client" and _rpc_failed(child):
            offer(kid, _Fate("continued", 0.8, f"{label} answered a gRPC error"))
        elif psig is None:
            why_own = _own_answer(t, parent, child, code)
            if why_own is not None:
                own[kid] = why_own
                continue
            offer(
                kid, _Fate("continued", 0.75, f"{t.label(pid)} failed with no exception of its own")
            )
        elif view.stack or (sig is not None and psig[0] == sig[0]):
            continue  # a stack with no chain, or one type with another message: a new error
        elif sig is not None and _names(psig, sig):
            offer(kid, _Fate("continued", 0.8, f"{psig[0]} names {label}'s {sig[0]}: translated"))
        else:
            late = _late(parent, child)
            if late is not None:
                own[kid] = (
                    f"{t.label(pid)} failed {late / 1e6:.3g} ms after {label} ended, with a "
                    f"{psig[0]} that does not name its error: an error of its own"
                )
                continue
            offer(
                kid,
                _Fate("continued", 0.6, f"{psig[0]} right after {label}'s failure: translated"),
            )
    if best is None:
        return None
    return best[1], best[2]


def _about_http(sig: Signature | None, code: int) -> bool:
    """True if an error reads like the caller's side of an HTTP error answer."""
    if sig is None:
        return True
    return str(code) in sig[1] or "http" in sig[0].lower() or "status" in sig[0].lower()


def _retried_attempts(t: _Trace, groups: list[RetryGroup]) -> dict[str, str]:
    """Failed attempts followed by another attempt of the same operation: retried."""
    out: dict[str, str] = {}
    for group in groups:
        outcome = "recovered" if group.succeeded else "did not recover"
        for n, sid in enumerate(group.attempts[:-1], 1):
            if sid in t.failing_set:
                out[sid] = f"retried: attempt {n} of {len(group.attempts)} ({outcome})"
    return out


def _inferred_errors(t: _Trace, covered: set[str], groups: list[RetryGroup]) -> list[ErrorPath]:
    in_order = [sid for sid in t.failing if sid not in covered]
    if not in_order:
        return []
    failing = set(in_order)
    retried = _retried_attempts(t, groups)
    fate: dict[str, _Fate] = {}
    parents = {t.parent[sid] for sid in failing if sid in t.parent}
    for pid in parents:
        fate.update(_weigh_children(t, pid, failing, retried))
    continued_into = {t.parent[k] for k, f in fate.items() if f.how == "continued"}
    paths = []
    for sid in in_order:
        if sid in continued_into:
            continue  # not where an error was born: a failing child's error climbed into it
        span, view = t.spans[sid], t.view(sid)
        path = ErrorPath(
            trace_id=t.trace_id,
            origin=sid,
            error_id=view.error_id or None,
            kind=view.kind or "UNKNOWN",
            code=view.code,
            error_type=view.error_type,
            message=view.exception_message,
            metadata=dict(view.metadata),
        )
        if not path.error_type and _status_code(span) is not None:
            path.error_type = f"HTTP {_status_code(span)}"
        kids_failing = [k for k in t.children.get(sid, []) if k in failing]
        if kids_failing:
            path.evidence.append(
                f"origin {t.label(sid)}: its failing children's errors ended below it"
            )
            path.confidence *= (
                min(fate[k].confidence for k in kids_failing if k in fate)
                if any(k in fate for k in kids_failing)
                else 0.9
            )
        else:
            path.evidence.append(f"origin {t.label(sid)}: no failing child")
        node = sid
        while True:
            step = fate.get(node)
            up = t.parent.get(node)
            if step is None or up is None or step.how != "continued":
                break
            path.propagators.append(up)
            path.evidence.append(f"into {t.label(up)}: {step.why}")
            path.confidence *= step.confidence
            node = up
        step = fate.get(node)
        if step is None:
            _finish_by_position(t, path, 0.85, "it did not fail")
        elif step.how == "unobserved":
            _set_outcome(path, "unobserved", None)
            path.evidence.append(f"unobserved: {step.why}")
            path.confidence *= step.confidence
        else:
            up = t.parent[node]
            _set_outcome(path, "absorbed", up)
            path.evidence.append(f"absorbed by {t.label(up)}: {step.why}")
            path.confidence *= step.confidence
        path.confidence = round(path.confidence, 3)
        paths.append(path)
    return sorted(paths, key=lambda p: t.spans[p.origin].start_ns)


def _retries(t: _Trace) -> list[RetryGroup]:
    """Runs of same-named siblings, some failing: attempts of one operation. An attempt runs
    alone (a span that overlapped another of its name is parallel work, never an attempt) and a
    run starts at a failure and ends at a success (what follows is new work). Only sibling
    lists with a failing span are looked at."""
    groups: list[RetryGroup] = []
    if not t.failing:
        return groups
    failing = t.failing_set
    for parent, kids in [(None, t.roots), *t.children.items()]:
        if len(kids) < 2 or failing.isdisjoint(kids):
            continue
        names = [t.spans[kid].name for kid in kids]
        if len(set(names)) == len(names):  # the common case: no two siblings share a name
            continue
        by_name: dict[str, list[str]] = defaultdict(list)
        for kid in kids:
            by_name[t.spans[kid].name].append(kid)
        for name, same in by_name.items():
            if len(same) < 2 or failing.isdisjoint(same):
                continue
            for run in _runs(t, parent, same):
                failed = sum(1 for s in run if s in failing)
                groups.append(RetryGroup(parent, name, run, failed, run[-1] not in failing))
    return groups


def _runs(t: _Trace, parent: str | None, same: list[str]) -> list[list[str]]:
    """The retry runs among the same-named siblings `same`: one at a time, starting at a
    failure, ending at a success; cut after an attempt whose error its parent failed with
    unless the next attempt failed alike (the parent raised that error, nobody retried it)."""
    spans, failing = t.spans, t.failing_set
    starts = [spans[s].start_ns for s in same]
    ends = [spans[s].end_ns for s in same]
    if not all(map(operator.lt, starts, itertools.islice(starts, 1, None))):  # mostly sorted
        order = sorted(range(len(same)), key=ends.__getitem__)  # by (start, end): two stable
        order.sort(key=starts.__getitem__)  # sorts on int keys, no tuple made or compared
        same, starts, ends = (
            [same[k] for k in order],
            [starts[k] for k in order],
            [ends[k] for k in order],
        )
    alone = [True] * len(same)
    last = 0  # the one that ends latest so far
    last_end = ends[0]
    for i in range(1, len(same)):
        if starts[i] < last_end:
            alone[i] = alone[last] = False
        if ends[i] > last_end:
            last, last_end = i, ends[i]
    runs: list[list[str]] = []
    run: list[str] = []
    for i, sid in enumerate(same):
        if not alone[i]:
            run = []
        elif run:
            run.append(sid)
            if sid not in failing:
                run = []
        elif sid in failing:
            run = [sid]
            runs.append(run)
    runs = [r for r in runs if len(r) > 1]
    if not runs or parent is None or parent not in failing or _retry_marked(t, parent, same):
        return runs
    out: list[list[str]] = []
    for r in runs:  # the parent failed: was it with an attempt's error nobody retried?
        sigs = [_signature(spans[s], t.view(s)) if s in failing else None for s in r]
        start = 0
        for k in range(len(r) - 1):
            if sigs[k] is not None and sigs[k + 1] != sigs[k] and _fails_with(t, parent, sigs[k]):
                out.append(r[start : k + 1])
                start = k + 1
        out.append(r[start:])
    return [r for r in out if len(r) > 1 and r[0] in failing]


def _retry_marked(t: _Trace, parent: str, same: list[str]) -> bool:
    """True if the spans say retries happened: a ``tracectx.retry`` event on the parent (what
    `retry_transient` writes) or an attempt number on an attempt."""
    if any(ev.name == sc.EVENT_RETRY for ev in t.spans[parent].events):
        return True
    return any(sc.ATTR_ATTEMPT in t.spans[s].attributes for s in same)


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
        groups = _retries(t)
        exact, covered = _exact_errors(t)
        errors = exact + _inferred_errors(t, covered, groups)
        results.append(  # positional: keywords cost a dict per trace
            TraceAnalysis(
                trace_id,
                t.spans,
                dict(t.children),
                t.roots,
                errors,
                t.async_edges,
                groups,
                problems,
            )
        )
    if span_set.problems and results:
        results[0].problems[:0] = span_set.problems
    return results


@dataclasses.dataclass(slots=True)
class FlowGraph:
    """Service/operation-level error flow across many traces.

    `unobserved` counts, by the node that started it, errors of fire-and-forget work nobody
    waited for: they never flow into that node, so no edge is drawn."""

    edges: Counter[tuple[str, str]] = dataclasses.field(default_factory=Counter)
    edge_kinds: dict[tuple[str, str], Counter[str]] = dataclasses.field(default_factory=dict)
    origins: Counter[str] = dataclasses.field(default_factory=Counter)
    escaped: Counter[str] = dataclasses.field(default_factory=Counter)
    absorbed: Counter[str] = dataclasses.field(default_factory=Counter)
    unobserved: Counter[str] = dataclasses.field(default_factory=Counter)


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
            if err.outcome == "escaped":
                graph.escaped[_node(chain[-1])] += 1
            elif err.outcome == "unobserved":
                top = analysis.spans[err.top]
                starter = analysis.spans.get(top.parent_id or "")
                graph.unobserved[_node(starter if starter is not None else top)] += 1
            elif err.absorber:
                graph.absorbed[_node(analysis.spans[err.absorber])] += 1
    return graph
