"""The stable JSON form of an analysis (schema ``tracectx.graph/v1``; see README)."""

from __future__ import annotations

from typing import Any

from tracectx.viz.analysis import FlowGraph, TraceAnalysis, flow_graph
from tracectx.viz.renderers.jaeger import jaeger_link

__all__ = ["SCHEMA", "to_json_data"]

SCHEMA = "tracectx.graph/v1"


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
    """A JSON-ready dict: traces (spans, errors, async edges, retries, problems) and the flow."""
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
                        "attributes": {
                            k: v if isinstance(v, (str, int, float, bool)) else str(v)
                            for k, v in s.attributes.items()
                        },
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
