"""Jaeger v1 JSON: traces with ``spans``, ``references`` and a ``processes`` map."""

from __future__ import annotations

from typing import Any

from tracectx.viz.model import Link, Span, SpanEvent, SpanSet

__all__ = ["parse_jaeger"]


def _tags(items: Any) -> dict[str, Any]:
    if not isinstance(items, list):
        return {}
    return {str(t["key"]): t.get("value") for t in items if isinstance(t, dict) and "key" in t}


def _hex(raw: Any, length: int) -> str | None:
    if not isinstance(raw, str) or not raw:
        return None
    text = raw.lower().rjust(length, "0")
    if len(text) != length or any(c not in "0123456789abcdef" for c in text):
        return None
    return text


def _truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _span(raw: dict[str, Any], services: dict[str, str], problems: list[str]) -> Span | None:
    trace_id, span_id = _hex(raw.get("traceID"), 32), _hex(raw.get("spanID"), 16)
    if trace_id is None or span_id is None:
        problems.append(f"span {raw.get('operationName')!r}: bad traceID/spanID, skipped")
        return None
    tags = _tags(raw.get("tags"))
    parent_id, links = None, []
    for ref in raw.get("references") or []:
        if not isinstance(ref, dict):
            continue
        rt, rs = _hex(ref.get("traceID"), 32), _hex(ref.get("spanID"), 16)
        if rt is None or rs is None:
            continue
        if ref.get("refType", "CHILD_OF") == "CHILD_OF" and parent_id is None and rt == trace_id:
            parent_id = rs
        else:
            links.append(Link(rt, rs))
    if parent_id is None and _hex(raw.get("parentSpanID"), 16):
        parent_id = _hex(raw.get("parentSpanID"), 16)
    try:
        start_us, duration_us = int(raw.get("startTime") or 0), int(raw.get("duration") or 0)
    except (TypeError, ValueError):
        start_us = duration_us = 0
    process = raw.get("process")
    service = (
        process.get("serviceName")
        if isinstance(process, dict)
        else services.get(str(raw.get("processID")), "unknown")
    )
    events = []
    for log in raw.get("logs") or []:
        fields = _tags((log or {}).get("fields"))
        events.append(SpanEvent(str(fields.pop("event", "log")), fields))
    error = _truthy(tags.get("error")) or str(tags.get("otel.status_code", "")).upper() == "ERROR"
    return Span(
        trace_id=trace_id,
        span_id=span_id,
        parent_id=parent_id,
        name=str(raw.get("operationName") or "?"),
        service=str(service or "unknown"),
        start_ns=start_us * 1000,
        end_ns=(start_us + duration_us) * 1000,
        error=error,
        status_message=str(tags.get("otel.status_description") or ""),
        kind=str(tags.get("span.kind") or "internal").lower(),
        attributes=tags,
        events=events,
        links=links,
    )


def parse_jaeger(traces: list[Any]) -> SpanSet:
    out = SpanSet()
    for trace in traces:
        if not isinstance(trace, dict):
            out.problems.append("trace entry is not an object")
            continue
        processes = trace.get("processes") or {}
        services = {
            str(pid): str((p or {}).get("serviceName") or "unknown")
            for pid, p in processes.items()
            if isinstance(p, dict)
        }
        for raw in trace.get("spans") or []:
            if isinstance(raw, dict):
                span = _span(raw, services, out.problems)
                if span is not None:
                    out.spans.append(span)
    return out
