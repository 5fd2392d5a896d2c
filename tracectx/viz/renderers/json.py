"""The stable JSON form of an analysis (schema ``tracectx.graph/v1``; see docs/visualiser.md).

Fields are only ever added to v1, never renamed or removed: span ``events`` (name and
attributes, so exception stacks, retry, handled and breaker events reach every consumer) and
error ``outcome``, ``confidence`` and ``evidence`` came later than the rest.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections import Counter
from typing import IO, Any

from tracectx.viz.analysis import ErrorPath, FlowGraph, TraceAnalysis, flow_graph
from tracectx.viz.model import SpanEvent
from tracectx.viz.renderers.jaeger import jaeger_link

__all__ = [
    "EVENT_TEXT_LIMIT",
    "SCHEMA",
    "JsonWriter",
    "error_confidence",
    "error_evidence",
    "error_outcome",
    "event_data",
    "plain",
    "to_json_data",
    "trace_data",
]

SCHEMA = "tracectx.graph/v1"
EVENT_TEXT_LIMIT = 16384  # one event attribute's text; a stack keeps its last frames

_STACK_KEY = "exception.stacktrace"
_SCALARS = frozenset((str, int, float, bool))  # kept as they are by `plain`

try:  # orjson (the viz extra) writes several times faster than json.dumps(indent=2)
    import orjson

    _OPTIONS: int | None = (
        orjson.OPT_INDENT_2
        | orjson.OPT_NON_STR_KEYS
        | orjson.OPT_PASSTHROUGH_DATACLASS
        | orjson.OPT_PASSTHROUGH_DATETIME
    )
except ImportError:  # pragma: no cover - core install without the viz extra
    _OPTIONS = None


def plain(value: Any) -> str | int | float | bool:
    """An attribute value as JSON scalar: scalars kept, anything else (lists, bytes) as text."""
    return value if isinstance(value, (str, int, float, bool)) else str(value)


def _event_value(key: str, value: Any) -> str | int | float | bool:
    out = plain(value)
    if isinstance(out, str) and len(out) > EVENT_TEXT_LIMIT:
        cut = "…"
        out = cut + out[-EVENT_TEXT_LIMIT:] if key == _STACK_KEY else out[:EVENT_TEXT_LIMIT] + cut
    return out


def event_data(event: SpanEvent) -> dict[str, Any]:
    """``{"name", "attributes"}`` of a span event; texts over `EVENT_TEXT_LIMIT` are cut (a
    stack trace from the front, so its innermost frames stay)."""
    return {
        "name": event.name,
        "attributes": {k: _event_value(k, v) for k, v in event.attributes.items()},
    }


def error_outcome(path: ErrorPath) -> str:
    """``absorbed`` / ``escaped`` / ``unobserved``: the analysis' own verdict when it gives one,
    else read from where the path ends (an absorber, an escape, or neither)."""
    value = getattr(path, "outcome", None)
    if isinstance(value, str) and value:
        return value
    if path.absorber:
        return "absorbed"
    return "escaped" if path.escaped else "unobserved"


def error_confidence(path: ErrorPath) -> float | None:
    """How sure the analysis is of this path (0..1), or None when it does not say."""
    value = getattr(path, "confidence", None)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def error_evidence(path: ErrorPath) -> list[str]:
    """Why the analysis drew this path (one reason per entry); empty when it does not say."""
    value = getattr(path, "evidence", None)
    return [str(v) for v in value] if isinstance(value, (list, tuple)) else []


def _flow(graph: FlowGraph) -> dict[str, Any]:
    return {
        "edges": [
            {"from": a, "to": b, "count": n, "kinds": dict(graph.edge_kinds.get((a, b), {}))}
            for (a, b), n in graph.edges.most_common()
        ],
        "origins": [{"node": node, "count": n} for node, n in graph.origins.most_common()],
        "escaped": dict(graph.escaped),
        "absorbed": dict(graph.absorbed),
    }


def _plain_attributes(attributes: dict[str, Any]) -> dict[str, Any]:
    return {k: v if v.__class__ in _SCALARS else plain(v) for k, v in attributes.items()}


def trace_data(a: TraceAnalysis, jaeger_url: str | None = None) -> dict[str, Any]:
    """One trace's entry of ``traces`` in `to_json_data`.

    Per span this is the writer's hottest code, so it avoids work the usual span does not
    need: attributes that are all scalars are passed as they are (checked in C), empty events
    and links build no comprehension, and ``duration_ms`` (``round(ns / 1e6, 3)``) is integer
    arithmetic when that is provably the same float: a duration under 1000 s whose ns are
    not exactly half way between two µs (0.5 ulp of the float is then far below the 1 ns
    distance to a rounding tie, and ``q / 1000`` is the float nearest to q µs, as round gives).
    """
    children = a.children
    spans = []
    for s in a.spans.values():
        ns = s.end_ns - s.start_ns
        attributes = s.attributes
        if not _SCALARS.issuperset(map(type, attributes.values())):
            attributes = _plain_attributes(attributes)
        spans.append(
            {
                "span_id": s.span_id,
                "parent_id": s.parent_id,
                "name": s.name,
                "service": s.service,
                "kind": s.kind,
                "start_ns": s.start_ns,
                "duration_ms": (ns + 500) // 1000 / 1000
                if 0 <= ns < 10**12 and ns % 1000 != 500
                else round(max(ns, 0) / 1e6, 3),
                "error": s.error,
                "children": children.get(s.span_id, []),
                "attributes": attributes,
                "status_message": s.status_message,
                "events": [event_data(e) for e in s.events] if s.events else [],
                "links": [{"trace_id": lk.trace_id, "span_id": lk.span_id} for lk in s.links]
                if s.links
                else [],
            }
        )
    return {
        "trace_id": a.trace_id,
        "jaeger_link": jaeger_link(jaeger_url, a) if jaeger_url else None,
        "problems": a.problems,
        "roots": a.roots,
        "spans": spans,
        "errors": [
            {
                "error_id": e.error_id,
                "kind": e.kind,
                "code": e.code,
                "type": e.error_type,
                "message": e.message,
                "origin": e.origin,
                "propagators": e.propagators,
                "absorber": e.absorber,
                "escaped": e.escaped,
                "exact": e.exact,
                "cause_id": e.cause_id,
                "metadata": e.metadata,
                "remote_origin": list(e.remote_origin) if e.remote_origin else None,
                "outcome": error_outcome(e),
                "confidence": error_confidence(e),
                "evidence": error_evidence(e),
            }
            for e in a.errors
        ],
        "async_edges": [
            {
                "source": e.source,
                "target": e.target,
                "kind": e.kind,
                "source_trace": e.source_trace,
            }
            for e in a.async_edges
        ],
        "retries": [
            {
                "parent": r.parent,
                "name": r.name,
                "attempts": r.attempts,
                "failed": r.failed,
                "succeeded": r.succeeded,
            }
            for r in a.retries
        ],
    }


def to_json_data(analyses: list[TraceAnalysis], jaeger_url: str | None = None) -> dict[str, Any]:
    """A JSON-ready dict: traces (spans with events, errors, async edges, retries, problems) and
    the flow."""
    traces = [trace_data(a, jaeger_url) for a in analyses]
    return {"schema": SCHEMA, "traces": traces, "flow": _flow(flow_graph(analyses))}


_NON_ASCII = re.compile("[^\x00-\x7f]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def _nest_marks(level: int) -> tuple[int, int]:
    """How many bytes `level` enclosing one-item arrays add before and after their item in
    ``indent=2`` layout: ``[\\n  [\\n    `` and ``\\n  ]\\n]`` for two."""
    before = sum(2 * i + 2 for i in range(level)) + 2 * level
    after = sum(2 * i + 2 for i in range(level))
    return before, after


_MARKS = [_nest_marks(level) for level in range(3)]


def _dumps(value: Any, level: int) -> bytes | memoryview:
    """`value` as json.dumps(indent=2, default=str) writes it, nested `level` deep: ASCII only
    (no raw bidi or control character reaches a terminal), by orjson when it can write it, by
    json for what it cannot (ints beyond 64 bits, lone surrogates).

    orjson has no starting indent, so `value` is written inside `level` one-item arrays and
    cut out of them: a view of the bytes (returned as a memoryview), where re-indenting every
    line (``replace``) scanned and copied the whole output again."""
    data = None
    if _OPTIONS is not None:
        nested = value
        for _ in range(level):
            nested = [nested]
        try:
            data = orjson.dumps(nested, default=str, option=_OPTIONS)
        except (TypeError, ValueError):
            data = None
        if data is not None:
            if not data.isascii():  # the arrays around `value` are ASCII: the cut is the same
                data = _NON_ASCII.sub(_escape, data.decode("utf-8")).encode("ascii")
            if level:
                before, after = _MARKS[level]
                return memoryview(data)[before : len(data) - after]  # no copy
    if data is None:
        data = json.dumps(value, indent=2, default=str).encode()
        data = data.replace(b"\n", b"\n" + b"  " * level) if level else data
    return data


def _merge(into: FlowGraph, part: FlowGraph) -> None:
    into.edges.update(part.edges)
    for edge, kinds in part.edge_kinds.items():
        into.edge_kinds.setdefault(edge, Counter()).update(kinds)
    into.origins.update(part.origins)
    into.escaped.update(part.escaped)
    into.absorbed.update(part.absorbed)
    into.unobserved.update(part.unobserved)


class JsonWriter:
    """Writes the `to_json_data` document (laid out as ``json.dumps(indent=2)``) one trace at a
    time, so no big export is ever held as one dict tree or one string.

    `add` takes each analysed trace; `finish` writes the document to `out`. The first trace is
    kept until then, because it carries the input's problems, which are known only at the end
    (`finish`'s `problems` go first on it, as `analyse` puts them); every later trace goes as
    bytes to a temporary spool file (in `spool_dir`), copied to `out` after the first.
    """

    def __init__(self, jaeger_url: str | None = None, spool_dir: str | None = None) -> None:
        self.jaeger_url = jaeger_url
        self.traces = 0
        self._first: TraceAnalysis | None = None
        self._flow = FlowGraph()
        self._spool: IO[bytes] = tempfile.TemporaryFile(dir=spool_dir)  # noqa: SIM115 - closed by finish/close
        #: more top-level keys written after ``flow``, e.g. ``propagation`` (--check-propagation)
        self.sections: dict[str, Any] = {}

    def add(self, analysis: TraceAnalysis) -> None:
        """Write (or, for the first, keep) one analysed trace and count it in the flow."""
        _merge(self._flow, flow_graph([analysis]))
        self.traces += 1
        if self._first is None:
            self._first = analysis
            return
        data = _dumps(trace_data(analysis, self.jaeger_url), 2)
        self._spool.write(b",\n    ")
        self._spool.write(data)

    def finish(self, out: IO[bytes], problems: list[str] | None = None) -> None:
        """Write the whole document to `out`: `problems` (the input's) lead the first trace's."""
        out.write(b'{\n  "schema": ' + _dumps(SCHEMA, 0) + b',\n  "traces": [')
        if self._first is not None:
            first = trace_data(self._first, self.jaeger_url)
            first["problems"] = [*(problems or []), *first["problems"]]
            out.write(b"\n    " + _dumps(first, 2))
            self._spool.seek(0)
            shutil.copyfileobj(self._spool, out, 1 << 20)
            out.write(b"\n  ]")
        else:
            out.write(b"]")
        out.write(b',\n  "flow": ' + _dumps(_flow(self._flow), 1))
        for key, value in self.sections.items():
            out.write(b",\n  " + _dumps(key, 0) + b": " + _dumps(value, 1))
        out.write(b"\n}")
        self.close()

    def close(self) -> None:
        """Drop the spool file (`finish` does this too)."""
        self._spool.close()

    def __enter__(self) -> JsonWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
