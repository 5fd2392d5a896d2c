"""The stable JSON form of an analysis (schema ``tracectx.graph/v1``; see README).

Fields are only ever added to v1, never renamed or removed: span ``events`` (name and
attributes, so exception stacks, retry, handled and breaker events reach every consumer) and
error ``outcome``, ``confidence`` and ``evidence`` came later than the rest.
"""

from __future__ import annotations

from typing import Any

from tracectx.viz.analysis import ErrorPath, FlowGraph, TraceAnalysis, flow_graph
from tracectx.viz.model import SpanEvent
from tracectx.viz.renderers.jaeger import jaeger_link

__all__ = [
    "EVENT_TEXT_LIMIT",
    "SCHEMA",
    "error_confidence",
    "error_evidence",
    "error_outcome",
    "event_data",
    "plain",
    "to_json_data",
]

SCHEMA = "tracectx.graph/v1"
EVENT_TEXT_LIMIT = 16384  # one event attribute's text; a stack keeps its last frames

_STACK_KEY = "exception.stacktrace"


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


def to_json_data(analyses: list[TraceAnalysis], jaeger_url: str | None = None) -> dict[str, Any]:
    """A JSON-ready dict: traces (spans with events, errors, async edges, retries, problems) and
    the flow."""
    traces = []
    for a in analyses:
        traces.append(
            {
                "trace_id": a.trace_id,
                "jaeger_link": jaeger_link(jaeger_url, a) if jaeger_url else None,
                "problems": a.problems,
                "roots": a.roots,
                "spans": [
                    {
                        "span_id": s.span_id,
                        "parent_id": s.parent_id,
                        "name": s.name,
                        "service": s.service,
                        "kind": s.kind,
                        "start_ns": s.start_ns,
                        "duration_ms": round(s.duration_ms, 3),
                        "error": s.error,
                        "children": a.children.get(s.span_id, []),
                        "attributes": {k: plain(v) for k, v in s.attributes.items()},
                        "status_message": s.status_message,
                        "events": [event_data(e) for e in s.events],
                        "links": [
                            {"trace_id": lk.trace_id, "span_id": lk.span_id} for lk in s.links
                        ],
                    }
                    for s in a.spans.values()
                ],
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
        )
    return {"schema": SCHEMA, "traces": traces, "flow": _flow(flow_graph(analyses))}
