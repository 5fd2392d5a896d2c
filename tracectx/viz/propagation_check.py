"""Where the trace broke: the hops that lost context, found from the spans alone.

A hop keeps its context when the callee's span is a child of the caller's (or links to it).
When a hop drops it, the callee starts a new trace, and the spans still say so:

- **dropped hop**: a CLIENT or PRODUCER span with no SERVER/CONSUMER child anywhere, while a
  root SERVER/CONSUMER span starts inside the call (after the send, for messaging) with
  matching attributes (path/route and method, ``server.address``/``server.port``,
  ``rpc.service``/``rpc.method``, ``messaging.destination.name`` and message key, Celery task
  name and message id); each root is given to one call at most, best match first;
- **in-process loss**: a root span on a pool thread (or an asyncio task) starting inside a
  span of the same service running on another thread or task: a pool without context copy.
  Only said where ``thread.id``/``thread.name`` or ``tracectx.task.name`` attributes show it
  (`tracectx.thread_attributes.ThreadAttributes` writes them);
- **orphan**: a span whose parent never arrives, told apart from one whose parent may still be
  running (it ended less than `in_flight_s` before the last span seen);
- **clock skew**: a server (consumer) span of another service starting before its client
  (producer), or after its client had the answer, by more than a tolerance, with the offset
  (at least that much);
- **split traces**: the traces joined by dropped hops and in-process losses, chained.

Across traces, `PropagationReport.health` counts per caller service, callee service and hop
kind the calls seen, connected (a child or link carried the context) and broken.

Hand-written matching (no library does this): roots are indexed by hop kind and start time,
each call looks only at the roots starting inside its window, so the check is
O(n log n) in the spans.
"""

from __future__ import annotations

import bisect
import dataclasses
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from tracectx import semconv as sc
from tracectx.viz.model import Span, SpanSet

__all__ = [
    "FINDING_KINDS",
    "HOP_KINDS",
    "Finding",
    "HealthRow",
    "OrphanGroup",
    "PropagationReport",
    "SpanRef",
    "SplitTrace",
    "check_propagation",
    "hop_kind",
]

HOP_KINDS = ("http", "grpc", "celery", "kafka", "messaging", "thread", "task")
FINDING_KINDS = ("dropped-hop", "in-process-loss", "orphan", "in-flight", "clock-skew")
UNKNOWN = "?"

MS = 1_000_000
_MAX_TEXT = 300  # attribute values are outside data: compared and shown cut to this
_POOL_THREAD = re.compile(
    r"^(ThreadPoolExecutor-\d+_\d+|asyncio_\d+|Thread-\d+( \(.*\))?|.*[Ww]orker.*|.*[Pp]ool.*)$"
)
_MAX_OPEN = 16  # open spans weighed as a lost root's submitter
_LOOK_BACK = 512  # spans of a process looked at before a lost root: bounds the check's cost


@dataclasses.dataclass(slots=True, frozen=True)
class SpanRef:
    """One span as a finding names it: where it is, its service and operation (span name)."""

    trace_id: str
    span_id: str
    service: str
    operation: str

    @classmethod
    def of(cls, span: Span) -> SpanRef:
        return cls(span.trace_id, span.span_id, _text(span.service), _text(span.name))

    @property
    def label(self) -> str:
        return f"{self.service}: {self.operation}"


@dataclasses.dataclass(slots=True)
class Finding:
    """One place the context was lost (or the clocks disagree).

    `kind` is one of `FINDING_KINDS`, `hop` one of `HOP_KINDS` (or ``?``). `caller` is the
    calling span (for an orphan: its missing parent, service and operation ``?``), `callee`
    the span that started without it (the matched root, the orphan, the skewed child).
    `confidence` is 0-1; `evidence` says in words what it rests on; `offset_ms` is the clock
    offset of the callee against the caller for ``clock-skew``.
    """

    kind: str
    hop: str
    caller: SpanRef | None
    callee: SpanRef | None
    confidence: float
    evidence: list[str]
    offset_ms: float | None = None

    @property
    def summary(self) -> str:
        caller = self.caller.label if self.caller else UNKNOWN
        callee = self.callee.label if self.callee else UNKNOWN
        what = {
            "dropped-hop": "lost the context",
            "in-process-loss": "lost the context in-process",
            "orphan": "parent never arrived",
            "in-flight": "parent not arrived yet (may still run)",
            "clock-skew": f"clock offset {self.offset_ms:+.1f} ms" if self.offset_ms else "skew",
        }[self.kind]
        return f"{caller} -> {callee} over {self.hop}: {what}"


@dataclasses.dataclass(slots=True)
class HealthRow:
    """Calls from `caller` to `callee` services over one hop kind: seen, connected (the context
    arrived), broken (a dropped hop or in-process loss); the rest are calls whose callee left
    no span to judge by (not instrumented, or the call never arrived)."""

    caller: str
    callee: str
    hop: str
    seen: int = 0
    connected: int = 0
    broken: int = 0

    @property
    def broken_share(self) -> float:
        judged = self.connected + self.broken
        return self.broken / judged if judged else 0.0


@dataclasses.dataclass(slots=True)
class OrphanGroup:
    """Spans of one service and operation whose parent never arrived (`orphans`) or has not
    arrived yet (`in_flight`)."""

    service: str
    operation: str
    hop: str
    orphans: int = 0
    in_flight: int = 0


@dataclasses.dataclass(slots=True)
class SplitTrace:
    """Traces one request made together: `trace_ids` (the earliest first) and the `hops` (the
    dropped-hop and in-process-loss findings) that chain them."""

    trace_ids: list[str]
    hops: list[Finding]


@dataclasses.dataclass(slots=True)
class PropagationReport:
    """What `check_propagation` found: findings (best first within each kind), split traces,
    the health table (worst share broken first), and orphans by service and operation (most
    first)."""

    findings: list[Finding]
    splits: list[SplitTrace]
    health: list[HealthRow]
    orphans: list[OrphanGroup] = dataclasses.field(default_factory=list)

    def of_kind(self, *kinds: str) -> list[Finding]:
        return [f for f in self.findings if f.kind in kinds]

    @property
    def broken(self) -> list[Finding]:
        """The findings that join traces: dropped hops and in-process losses."""
        return self.of_kind("dropped-hop", "in-process-loss")


# -- what a span says -------------------------------------------------------------------------


def _text(value: Any) -> str:
    text = value if isinstance(value, str) else str(value)
    return text[:_MAX_TEXT]


def _attr(span: Span, *keys: str) -> str | None:
    """The first of `keys` the span carries, as bounded text (None when none is set)."""
    attributes = span.attributes
    for key in keys:
        value = attributes.get(key)
        if value is not None and value != "":
            return _text(value)
    return None


def hop_kind(span: Span) -> str | None:
    """The hop kind of a CLIENT/PRODUCER/SERVER/CONSUMER span between services (``http``,
    ``grpc``, ``celery``, ``kafka``, ``messaging``), or None (a database call, internal work)."""
    if span.kind not in ("client", "server", "producer", "consumer"):
        return None
    attributes = span.attributes
    system = attributes.get("messaging.system")
    if span.kind in ("producer", "consumer"):
        if (
            system == "celery"
            or sc.ATTR_CELERY_TASK_NAME in attributes
            or "celery.task_name" in attributes
        ):
            return "celery"
        if system == "kafka":
            return "kafka"
        if system is not None or "messaging.destination.name" in attributes:
            return "messaging"
        return None
    if attributes.get("rpc.system") == "grpc" or "rpc.service" in attributes:
        return "grpc"
    if any(k in attributes for k in _HTTP_KEYS):
        return "http"
    return None


_HTTP_KEYS = (
    "http.request.method",
    "http.method",
    "url.full",
    "http.url",
    "url.path",
    "http.target",
    "http.route",
)
_PLACEHOLDER = re.compile(r"\\\{[^/]*?\\\}|\\<[^/]*?\\>|:[A-Za-z_]\w*")


def _method(span: Span) -> str | None:
    method = _attr(span, "http.request.method", "http.method")
    if method is None and " " in span.name:
        first = span.name.split(" ", 1)[0]
        method = first if first.isupper() and first.isalpha() else None
    return method.upper() if method else None


def _path(span: Span) -> str | None:
    """The concrete path a request went to (a client's URL, a server's target)."""
    path = _attr(span, "url.path")
    if path is None:
        full = _attr(span, "url.full", "http.url", "http.target")
        if full is not None:
            try:
                path = urlsplit(full).path or "/"
            except ValueError:
                path = None
    if path is None and span.kind == "client":
        path = _name_path(span)
    return path


def _name_path(span: Span) -> str | None:
    """The path in a span name ``GET /orders/{id}`` (a server's route, a client's path)."""
    if " " not in span.name:
        return None
    rest = span.name.split(" ", 1)[1]
    return rest if rest.startswith("/") else None


def _route_matches(route: str, path: str) -> bool:
    """A route template (``/orders/{id}``, ``/orders/<id>``, ``/orders/:id``) matches `path`."""
    if route == path:
        return True
    if not any(c in route for c in "{<:"):
        return False
    pattern = _PLACEHOLDER.sub("[^/]+", re.escape(route))
    return re.fullmatch(pattern, path) is not None


def _address(span: Span, keys: tuple[str, ...]) -> tuple[str | None, str | None]:
    host = _attr(span, *keys[:2])
    port = _attr(span, *keys[2:])
    if host is None and span.kind == "client":
        full = _attr(span, "url.full", "http.url")
        if full:
            try:
                parts = urlsplit(full)
                host = parts.hostname
                port = port or (str(parts.port) if parts.port else None)
            except ValueError:
                pass
    return host.lower() if host else None, port


_CLIENT_ADDR = ("server.address", "net.peer.name", "server.port", "net.peer.port")
_SERVER_ADDR = ("server.address", "net.host.name", "server.port", "net.host.port")


def _thread(span: Span) -> str | None:
    return _attr(span, "thread.id", "thread.name")


def _task(span: Span) -> str | None:
    return _attr(span, sc.ATTR_TASK_NAME)


# -- matching a call to a root ----------------------------------------------------------------


@dataclasses.dataclass(slots=True)
class _Match:
    caller: Span
    callee: Span
    score: tuple[int, int, int]  # (exact id, attributes matched, -gap)
    evidence: list[str]
    exact: bool


def _gap_ms(caller: Span, callee: Span) -> float:
    return (callee.start_ns - caller.start_ns) / MS


def _match_http(caller: Span, root: Span) -> tuple[int, list[str]] | None:
    path = _path(caller)
    if path is None:
        return None
    route = _attr(root, "http.route") or _name_path(root)
    target = _path(root)
    evidence: list[str] = []
    if target is not None and target == path:
        evidence.append(f"path {path} matches")
    elif target is None and route is not None and _route_matches(route, path):
        evidence.append(f"path {path} matches route {route}")
    else:
        return None
    points = 1
    method, root_method = _method(caller), _method(root)
    if method and root_method:
        if method != root_method:
            return None
        evidence.append(f"method {method} matches")
        points += 1
    host, port = _address(caller, _CLIENT_ADDR)
    root_host, root_port = _address(root, _SERVER_ADDR)
    if host and root_host:
        if host != root_host:
            return None
        evidence.append(f"server.address {host} matches")
        points += 1
    elif host and host.split(".", 1)[0] == root.service.lower():
        evidence.append(f"server.address {host} names service {root.service}")
        points += 1
    if port and root_port:
        if port != root_port:
            return None
        evidence.append(f"server.port {port} matches")
        points += 1
    return points, evidence


def _match_grpc(caller: Span, root: Span) -> tuple[int, list[str]] | None:
    service, method = _attr(caller, "rpc.service"), _attr(caller, "rpc.method")
    if service is None or service != _attr(root, "rpc.service"):
        return None
    if method != _attr(root, "rpc.method"):
        return None
    return 2, [f"rpc.service/rpc.method {service}/{method} match"]


def _match_messaging(caller: Span, root: Span) -> tuple[int, list[str]] | None:
    evidence: list[str] = []
    points = 0
    task = _attr(caller, sc.ATTR_CELERY_TASK_NAME, "celery.task_name")
    if task is not None:
        if task != _attr(root, sc.ATTR_CELERY_TASK_NAME, "celery.task_name"):
            return None
        evidence.append(f"celery task {task} matches")
        points += 1
    destination = _attr(caller, "messaging.destination.name", "messaging.destination")
    root_destination = _attr(root, "messaging.destination.name", "messaging.destination")
    if destination and root_destination:
        if destination != root_destination:
            return None
        evidence.append(f"messaging.destination.name {destination} matches")
        points += 1
    if points == 0:
        return None
    for keys, what in (
        ((_KEY,), "message key"),
        (("messaging.destination.partition.id", "messaging.kafka.partition"), "partition"),
    ):
        mine, theirs = _attr(caller, *keys), _attr(root, *keys)
        if mine is not None and theirs is not None:
            if mine != theirs:
                return None
            evidence.append(f"{what} {mine} matches")
            points += 1
    return points, evidence


_MATCHERS = {
    "http": _match_http,
    "grpc": _match_grpc,
    "celery": _match_messaging,
    "kafka": _match_messaging,
    "messaging": _match_messaging,
}
_MESSAGE_ID = ("messaging.message.id", "messaging.message_id")
_KEY = "messaging.kafka.message.key"
_MAX_CANDIDATES = 256  # roots weighed per call without an id or key: bounds the check's cost


class _Index:
    """Every span of the input by trace and id, with children, links into spans, roots."""

    def __init__(self, spans: list[Span]) -> None:
        self.by_key: dict[tuple[str, str], Span] = {}
        for span in spans:
            self.by_key.setdefault((span.trace_id, span.span_id), span)
        self.children: dict[tuple[str, str], list[Span]] = defaultdict(list)
        self.linked: set[tuple[str, str]] = set()  # spans some other span links to
        self.roots: list[Span] = []
        self.orphans: list[Span] = []
        for span in self.by_key.values():
            for link in span.links:
                self.linked.add((link.trace_id, link.span_id))
            pid = span.parent_id
            if not pid or pid == span.span_id:
                self.roots.append(span)
            elif (span.trace_id, pid) in self.by_key:
                self.children[(span.trace_id, pid)].append(span)
            else:
                self.orphans.append(span)
        self.last_end = max((s.end_ns for s in self.by_key.values()), default=0)


def _callee_answered(index: _Index, caller: Span) -> bool:
    """A SERVER/CONSUMER child (or a consumer linking to it) carried the caller's context."""
    key = (caller.trace_id, caller.span_id)
    if key in index.linked:
        return True
    return any(c.kind in ("server", "consumer") for c in index.children.get(key, ()))


def _no_answer(caller: Span) -> bool:
    """An HTTP call that failed with no status: it never reached a server."""
    return (
        caller.kind == "client"
        and caller.error
        and _attr(caller, "http.response.status_code", "http.status_code") is None
        and hop_kind(caller) == "http"
    )


def _bucket(span: Span, hop: str) -> str | None:
    """What narrows a hop's candidate roots: the task name (Celery), the destination
    (messaging), the RPC service (gRPC); None for HTTP (a call's window is short)."""
    if hop == "celery":
        return _attr(span, sc.ATTR_CELERY_TASK_NAME, "celery.task_name")
    if hop in ("kafka", "messaging"):
        return _attr(span, "messaging.destination.name", "messaging.destination")
    if hop == "grpc":
        return _attr(span, "rpc.service")
    return None


class _Roots:
    """Roots that may be a lost hop's callee (SERVER/CONSUMER roots without a link: a link
    carried the context), by hop kind and bucket in start order, and by message id and by
    destination and message key, so a call looks at few roots however long its window."""

    def __init__(self, index: _Index) -> None:
        lists: dict[tuple[str, str | None], list[Span]] = defaultdict(list)
        self.by_id: dict[str, list[Span]] = defaultdict(list)
        self.by_key: dict[tuple[str, str], list[Span]] = defaultdict(list)
        for root in index.roots:
            if root.kind not in ("server", "consumer") or root.links:
                continue
            hop = hop_kind(root)
            if hop is None:
                continue
            pools = [hop, "messaging"] if hop in ("celery", "kafka") else [hop]
            for pool in pools:
                lists[(pool, None)].append(root)
                bucket = _bucket(root, pool)
                if bucket is not None:
                    lists[(pool, bucket)].append(root)
            message_id = _attr(root, *_MESSAGE_ID)
            if message_id is not None:
                self.by_id[message_id].append(root)
            key = _attr(root, _KEY)
            destination = _attr(root, "messaging.destination.name")
            if key is not None and destination is not None:
                self.by_key[(destination, key)].append(root)
        self.timelines: dict[tuple[str, str | None], tuple[list[int], list[Span]]] = {}
        for name, roots in lists.items():
            roots.sort(key=lambda s: s.start_ns)
            self.timelines[name] = ([r.start_ns for r in roots], roots)

    def candidates(self, call: Span, hop: str, lo: int, hi: int) -> list[Span]:
        """The roots starting in [lo, hi] that `call` may have started: those with its message
        id or its key when any has, else (at most `_MAX_CANDIDATES`) by time."""
        message_id = _attr(call, *_MESSAGE_ID)
        exact = self.by_id.get(message_id) if message_id is not None else None
        if not exact:
            key, destination = _attr(call, _KEY), _attr(call, "messaging.destination.name")
            if key is not None and destination is not None:
                exact = self.by_key.get((destination, key))
        if exact:
            return [r for r in exact if lo <= r.start_ns <= hi]
        timeline = self.timelines.get((hop, _bucket(call, hop)))
        if timeline is None:
            return []
        starts, roots = timeline
        first = bisect.bisect_left(starts, lo)
        last = min(bisect.bisect_right(starts, hi), first + _MAX_CANDIDATES)
        return roots[first:last]


def _dropped_hops(
    index: _Index, slack_ns: int, max_delay_ns: int
) -> tuple[list[Finding], list[Span]]:
    """Dropped-hop findings (one root per call, best match first), and the calls seen."""
    roots = _Roots(index)
    calls: list[Span] = []
    matches: list[_Match] = []
    ambiguity: Counter[tuple[str, str]] = Counter()
    for span in index.by_key.values():
        if span.kind not in ("client", "producer"):
            continue
        hop = hop_kind(span)
        if hop is None:
            continue
        calls.append(span)
        if _callee_answered(index, span) or _no_answer(span):
            continue
        lo = span.start_ns - slack_ns
        hi = span.end_ns + slack_ns if span.kind == "client" else span.start_ns + max_delay_ns
        for root in roots.candidates(span, hop, lo, hi):
            if root.trace_id == span.trace_id and root.span_id == span.span_id:
                continue
            matched = _MATCHERS[hop](span, root)
            if matched is None:
                continue
            points, evidence = matched
            mine, theirs = _attr(span, *_MESSAGE_ID), _attr(root, *_MESSAGE_ID)
            exact = mine is not None and mine == theirs
            if mine is not None and theirs is not None and not exact:
                continue
            if exact:
                evidence.append(f"messaging.message.id {mine} matches")
            gap = abs(root.start_ns - span.start_ns)
            matches.append(_Match(span, root, (int(exact), points, -gap), evidence, exact))
            ambiguity[(span.trace_id, span.span_id)] += 1
    matches.sort(key=lambda m: m.score, reverse=True)
    taken_calls: set[tuple[str, str]] = set()
    taken_roots: set[tuple[str, str]] = set()
    findings = []
    for m in matches:
        call = (m.caller.trace_id, m.caller.span_id)
        target = (m.callee.trace_id, m.callee.span_id)
        if call in taken_calls or target in taken_roots:
            continue
        taken_calls.add(call)
        taken_roots.add(target)
        hop = hop_kind(m.caller) or UNKNOWN
        others = ambiguity[call] - 1
        fit = min(0.95, 0.55 + 0.1 * m.score[1]) / (1 + others) ** 0.5
        confidence = 0.99 if m.exact else fit
        what = "started" if m.caller.kind == "client" else "consumed"
        evidence = [
            f"{SpanRef.of(m.caller).label} has no SERVER/CONSUMER child in any trace",
            f"root {SpanRef.of(m.callee).label} (trace {m.callee.trace_id}) {what} "
            f"{_gap_ms(m.caller, m.callee):+.1f} ms after the call began",
            *m.evidence,
        ]
        if others:
            evidence.append(f"{others} other root(s) matched too; this one matched best")
        findings.append(
            Finding(
                "dropped-hop",
                hop,
                SpanRef.of(m.caller),
                SpanRef.of(m.callee),
                round(confidence, 3),
                evidence,
            )
        )
    return findings, calls


# -- in-process hops --------------------------------------------------------------------------


def _process(span: Span) -> tuple[str, str]:
    """The process a span ran in, as far as the spans say: service and instance (or pid)."""
    resource = span.resource_attributes or {}
    instance = resource.get("service.instance.id") or resource.get("process.pid") or ""
    return _text(span.service), _text(instance)


def _in_process_hop(parent: Span, child: Span) -> str | None:
    """``thread`` or ``task`` when `child` runs on another thread or task than `parent`."""
    t_parent, t_child = _thread(parent), _thread(child)
    if t_parent is not None and t_child is not None and t_parent != t_child:
        return "task" if _task(parent) is not None else "thread"
    k_parent, k_child = _task(parent), _task(child)
    if k_parent is not None and k_child is not None and k_parent != k_child:
        return "task"
    return None


def _worker_evidence(root: Span) -> str | None:
    """Why `root` runs on a pooled thread (the only roots checked: a root on a thread or task
    of its own, a scheduler's or a periodic task's, is where work legitimately begins)."""
    name = _attr(root, "thread.name")
    if name is not None and _POOL_THREAD.match(name):
        return f"runs on pool thread {name}"
    return None


def _submitter_fit(index: _Index, span: Span, root: Span) -> tuple[bool, bool, int]:
    """How well `span` fits as the one that handed `root` to a pool: it sat idle (no child of
    its own ran) while the work ran, it outlasted the work, and its previous step (its start
    or a child's end) was just before (the gap, negated: larger is better)."""
    kids = index.children.get((span.trace_id, span.span_id), ())
    idle = not any(k.start_ns < root.end_ns and k.end_ns > root.start_ns for k in kids)
    last = max([span.start_ns, *(k.end_ns for k in kids if k.end_ns <= root.start_ns)])
    return idle, span.end_ns >= root.end_ns, -(root.start_ns - last)


def _in_process_losses(index: _Index) -> list[Finding]:
    """Roots on pool threads or tasks started inside a same-process span on another thread."""
    by_process: dict[tuple[str, str], list[Span]] = defaultdict(list)
    for span in index.by_key.values():
        if _thread(span) is not None or _task(span) is not None:
            by_process[_process(span)].append(span)
    starts: dict[tuple[str, str], list[int]] = {}
    for process, spans in by_process.items():
        spans.sort(key=lambda s: s.start_ns)
        starts[process] = [s.start_ns for s in spans]
    findings = []
    for root in index.roots:
        if root.kind in ("server", "consumer") or root.links:
            continue
        why = _worker_evidence(root)
        if why is None:
            continue
        process = _process(root)
        spans = by_process.get(process, [])
        starts_before = bisect.bisect_right(starts.get(process, []), root.start_ns)
        found: list[tuple[tuple[bool, bool, int], Span, str]] = []
        for i in range(starts_before - 1, max(starts_before - _LOOK_BACK, 0) - 1, -1):
            span = spans[i]
            if (
                span.trace_id == root.trace_id
                or span.end_ns < root.start_ns
                or span.kind in ("client", "producer")  # a call out hands nothing to a pool
            ):
                continue
            kind = _in_process_hop(span, root)
            if kind is not None:
                found.append((_submitter_fit(index, span, root), span, kind))
                if len(found) >= _MAX_OPEN:
                    break
        if not found:
            continue
        fit, best, hop = max(found, key=lambda c: c[0])
        confidence = 0.9 if len(found) == 1 else 0.85 / len(found) ** 0.25
        evidence = [
            f"{SpanRef.of(root).label} starts a new trace {root.trace_id} and {why}",
            f"{SpanRef.of(best).label} on {_thread(best) or _task(best)} was running then; "
            f"its previous step ended {-fit[2] / MS:.2f} ms before"
            + (", and it did nothing else until the work ended" if fit[0] else ""),
        ]
        if len(found) > 1:
            evidence.append(f"{len(found) - 1} other span(s) of the process were open too")
        findings.append(
            Finding(
                "in-process-loss",
                hop,
                SpanRef.of(best),
                SpanRef.of(root),
                round(confidence, 3),
                evidence,
            )
        )
    return findings


# -- orphans, clock skew ----------------------------------------------------------------------


def _orphans(index: _Index, now_ns: int, in_flight_ns: int) -> list[Finding]:
    findings = []
    for span in index.orphans:
        parent = SpanRef(span.trace_id, span.parent_id or "", UNKNOWN, UNKNOWN)
        waited = (now_ns - span.end_ns) / 1e9
        if now_ns - span.end_ns < in_flight_ns:
            kind = "in-flight"
            evidence = [
                f"parent {span.parent_id} not seen; ended {waited:.1f} s ago: may still run"
            ]
        else:
            kind = "orphan"
            evidence = [f"parent {span.parent_id} never arrived ({waited:.1f} s after it ended)"]
        findings.append(
            Finding(kind, hop_kind(span) or UNKNOWN, parent, SpanRef.of(span), 0.9, evidence)
        )
    return findings


_SKEW_PAIRS = {("server", "client"), ("consumer", "producer")}


def _clock_skew(index: _Index, tolerance_ns: int) -> list[Finding]:
    findings = []
    for (trace_id, pid), kids in index.children.items():
        parent = index.by_key[(trace_id, pid)]
        for child in kids:
            if (child.kind, parent.kind) not in _SKEW_PAIRS or child.service == parent.service:
                continue
            # A server ending a little after its client is normal (the answer is sent before
            # the span ends); starting after the client had its answer is not.
            early = parent.start_ns - child.start_ns
            late = child.start_ns - parent.end_ns if child.kind == "server" else 0
            if early > tolerance_ns:
                offset, how = -early, f"starts {early / MS:.1f} ms before"
            elif late > tolerance_ns:
                offset, how = late, f"starts {late / MS:.1f} ms after the end of"
            else:
                continue
            evidence = [
                f"{SpanRef.of(child).label} {how} {SpanRef.of(parent).label}",
                f"{child.service}'s clock is about {offset / MS:+.1f} ms off {parent.service}'s",
            ]
            findings.append(
                Finding(
                    "clock-skew",
                    hop_kind(parent) or UNKNOWN,
                    SpanRef.of(parent),
                    SpanRef.of(child),
                    0.8,
                    evidence,
                    round(offset / MS, 3),
                )
            )
    return findings


# -- across traces ----------------------------------------------------------------------------


def _health(index: _Index, calls: list[Span], broken: list[Finding]) -> list[HealthRow]:
    rows: dict[tuple[str, str, str], HealthRow] = {}

    def row(caller: str, callee: str, hop: str) -> HealthRow:
        key = (caller, callee, hop)
        found = rows.get(key)
        if found is None:
            found = rows[key] = HealthRow(caller, callee, hop)
        return found

    lost = {
        (f.caller.trace_id, f.caller.span_id): f
        for f in broken
        if f.kind == "dropped-hop" and f.caller and f.callee
    }
    linked_by: dict[tuple[str, str], Span] = {}
    for span in index.by_key.values():
        for link in span.links:
            if span.kind == "consumer":
                linked_by.setdefault((link.trace_id, link.span_id), span)
    for call in calls:
        key = (call.trace_id, call.span_id)
        hop = hop_kind(call) or UNKNOWN
        finding = lost.get(key)
        answered = [c for c in index.children.get(key, ()) if c.kind in ("server", "consumer")] or (
            [linked_by[key]] if key in linked_by else []
        )
        if answered:
            r = row(_text(call.service), _text(answered[0].service), hop)
            r.seen += 1
            r.connected += 1
        elif finding is not None and finding.callee is not None:
            r = row(_text(call.service), finding.callee.service, hop)
            r.seen += 1
            r.broken += 1
        else:
            row(_text(call.service), UNKNOWN, hop).seen += 1
    for (trace_id, pid), kids in index.children.items():
        parent = index.by_key[(trace_id, pid)]
        for child in kids:
            if child.service != parent.service:
                continue
            hop_in = _in_process_hop(parent, child)
            if hop_in is not None:
                r = row(_text(parent.service), _text(child.service), hop_in)
                r.seen += 1
                r.connected += 1
    for f in broken:
        if f.kind == "in-process-loss" and f.caller and f.callee:
            r = row(f.caller.service, f.callee.service, f.hop)
            r.seen += 1
            r.broken += 1
    return sorted(rows.values(), key=lambda r: (-r.broken_share, -r.seen, r.caller, r.callee))


def _splits(index: _Index, broken: list[Finding]) -> list[SplitTrace]:
    """Traces chained by broken hops (union-find over trace ids)."""
    up: dict[str, str] = {}

    def find(x: str) -> str:
        while up.get(x, x) != x:
            up[x] = up.get(up[x], up[x])
            x = up[x]
        return x

    for f in broken:
        if f.caller and f.callee and f.caller.trace_id != f.callee.trace_id:
            up.setdefault(f.caller.trace_id, f.caller.trace_id)
            up.setdefault(f.callee.trace_id, f.callee.trace_id)
            a, b = find(f.caller.trace_id), find(f.callee.trace_id)
            if a != b:
                up[b] = a
    first_start: dict[str, int] = {}
    for (trace_id, _), span in index.by_key.items():
        if trace_id in up:
            first_start[trace_id] = min(first_start.get(trace_id, span.start_ns), span.start_ns)
    groups: dict[str, list[str]] = defaultdict(list)
    for trace_id in up:
        groups[find(trace_id)].append(trace_id)
    hops: dict[str, list[Finding]] = defaultdict(list)
    for f in broken:
        if f.caller and f.callee and f.caller.trace_id != f.callee.trace_id:
            hops[find(f.caller.trace_id)].append(f)
    out = []
    for head, members in groups.items():
        members.sort(key=lambda t: (first_start.get(t, 0), t))
        out.append(SplitTrace(members, hops[head]))
    out.sort(key=lambda s: (-len(s.trace_ids), s.trace_ids[0]))
    return out


def check_propagation(
    spans: SpanSet | Iterable[Span],
    *,
    skew_tolerance_ms: float = 1.0,
    match_slack_ms: float = 5.0,
    max_delay_s: float = 300.0,
    in_flight_s: float = 30.0,
    now_ns: int | None = None,
) -> PropagationReport:
    """Find where context was lost in `spans` (any number of traces, any sources together).

    `match_slack_ms`: how far outside a call's window a callee root may start (clocks of two
    hosts disagree); `max_delay_s`: how long after a send a consumer may start; an orphan whose
    span ended less than `in_flight_s` before `now_ns` (default: the last end seen) is
    ``in-flight``; `skew_tolerance_ms`: how far a child may stick out of its parent before it
    is reported as clock skew.
    """
    members = spans.spans if isinstance(spans, SpanSet) else list(spans)
    index = _Index(members)
    dropped, calls = _dropped_hops(index, int(match_slack_ms * MS), int(max_delay_s * 1e9))
    in_process = _in_process_losses(index)
    broken = [*dropped, *in_process]
    now = index.last_end if now_ns is None else now_ns
    orphans = _orphans(index, now, int(in_flight_s * 1e9))
    findings = [
        *sorted(dropped, key=lambda f: -f.confidence),
        *sorted(in_process, key=lambda f: -f.confidence),
        *orphans,
        *_clock_skew(index, int(skew_tolerance_ms * MS)),
    ]
    return PropagationReport(
        findings, _splits(index, broken), _health(index, calls, broken), _orphan_groups(orphans)
    )


def _orphan_groups(orphans: list[Finding]) -> list[OrphanGroup]:
    groups: dict[tuple[str, str, str], OrphanGroup] = {}
    for f in orphans:
        if f.callee is None:
            continue
        key = (f.callee.service, f.callee.operation, f.hop)
        group = groups.get(key)
        if group is None:
            group = groups[key] = OrphanGroup(*key)
        if f.kind == "orphan":
            group.orphans += 1
        else:
            group.in_flight += 1
    return sorted(groups.values(), key=lambda g: (-g.orphans, -g.in_flight, g.service))
