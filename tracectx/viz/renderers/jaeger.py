"""Jaeger: deep links that highlight a path's spans, and annotated Jaeger JSON for the UI upload.

Search Jaeger for error origins with the tag query ``tracectx.error.role=origin``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from tracectx.viz.analysis import TraceAnalysis

__all__ = ["annotated_jaeger_json", "jaeger_link"]


def jaeger_link(base_url: str, analysis: TraceAnalysis) -> str:
    """``{base}/trace/{id}?uiFind=<span ids>``: opens the trace with the error paths highlighted."""
    ids: dict[str, None] = {}  # ordered and deduplicated in linear time
    for err in analysis.errors:
        ids.update(dict.fromkeys(err.span_ids))
    link = f"{base_url.rstrip('/')}/trace/{analysis.trace_id}"
    return f"{link}?uiFind={quote(' '.join(ids))}" if ids else link


def annotated_jaeger_json(analyses: list[TraceAnalysis]) -> dict[str, Any]:
    """Jaeger v1 JSON of the traces, with ``tracectx.viz.role`` tags on every path span."""
    data = []
    for analysis in analyses:
        roles: dict[str, str] = {}
        for err in analysis.errors:
            for sid in err.propagators:
                roles.setdefault(sid, "propagator")
            if err.absorber:
                roles.setdefault(err.absorber, "absorber")
            roles[err.origin] = "origin"
        services = sorted({s.service for s in analysis.spans.values()})
        pid = {svc: f"p{i + 1}" for i, svc in enumerate(services)}
        spans = []
        for span in analysis.spans.values():
            tags: list[dict[str, Any]] = [
                {"key": k, "type": "string", "value": str(v)} for k, v in span.attributes.items()
            ]
            tags.append({"key": "span.kind", "type": "string", "value": span.kind})
            if span.error:
                tags.append({"key": "error", "type": "bool", "value": True})
            if span.span_id in roles:
                tags.append(
                    {"key": "tracectx.viz.role", "type": "string", "value": roles[span.span_id]}
                )
            refs = []
            if span.parent_id:
                refs.append(
                    {"refType": "CHILD_OF", "traceID": span.trace_id, "spanID": span.parent_id}
                )
            refs += [
                {"refType": "FOLLOWS_FROM", "traceID": lk.trace_id, "spanID": lk.span_id}
                for lk in span.links
            ]
            spans.append(
                {
                    "traceID": span.trace_id,
                    "spanID": span.span_id,
                    "operationName": span.name,
                    "references": refs,
                    "startTime": span.start_ns // 1000,
                    "duration": max(span.end_ns - span.start_ns, 0) // 1000,
                    "tags": tags,
                    "logs": [
                        {
                            "timestamp": span.start_ns // 1000,
                            "fields": [{"key": "event", "type": "string", "value": e.name}]
                            + [
                                {"key": k, "type": "string", "value": str(v)}
                                for k, v in e.attributes.items()
                            ],
                        }
                        for e in span.events
                    ],
                    "processID": pid[span.service],
                }
            )
        data.append(
            {
                "traceID": analysis.trace_id,
                "spans": spans,
                "processes": {p: {"serviceName": s, "tags": []} for s, p in pid.items()},
            }
        )
    return {"data": data}
