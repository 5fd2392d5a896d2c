"""Jaeger v1 JSON: traces with ``spans``, ``references`` and a ``processes`` map, or bare spans
with the ``process`` inline (Jaeger UI's span lists).

Every part of the wrong type is skipped with a problem; the rest of the document is read.
"""

from __future__ import annotations

from typing import Any

from tracectx.viz.model import Link, Span, SpanEvent, SpanSet
from tracectx.viz.sources.fields import (
    SOURCE_SPAN_ID,
    SOURCE_TRACE_ID,
    as_dict,
    as_list,
    describe,
    parse_id,
    plain_value,
    text,
    time_value,
)

__all__ = ["is_jaeger_span", "parse_jaeger"]


def is_jaeger_span(item: Any) -> bool:
    """True for a bare Jaeger span object (it has a ``spanID``, and no ``spans`` of its own)."""
    return isinstance(item, dict) and "spanID" in item and "spans" not in item


def _tags(items: Any, what: str, problems: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for tag in as_list(items, what, problems):
        if isinstance(tag, dict) and isinstance(tag.get("key"), str):
            out[tag["key"]] = plain_value(tag.get("value"), 0, problems)
        else:
            problems.append(f"{what}: entry {describe(tag)} has no string key, skipped")
    return out


def _truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _references(
    raw: dict[str, Any], trace_id: str, where: str, problems: list[str]
) -> tuple[str | None, list[Link]]:
    parent_id, links = None, []
    for ref in as_list(raw.get("references"), f"{where} references", problems):
        ref = ref if isinstance(ref, dict) else {}
        rt, rs = parse_id(ref.get("traceID"), 32), parse_id(ref.get("spanID"), 16)
        if rt is None or rs is None:
            problems.append(f"{where}: reference without trace/span id, skipped")
            continue
        child_of = ref.get("refType", "CHILD_OF") == "CHILD_OF"
        if child_of and parent_id is None and rt[0] == trace_id:
            parent_id = rs[0]
        else:
            links.append(Link(rt[0], rs[0]))
    if parent_id is None:
        parent = parse_id(raw.get("parentSpanID"), 16)
        parent_id = parent[0] if parent else None
    return parent_id, links


def _events(raw: dict[str, Any], where: str, problems: list[str]) -> list[SpanEvent]:
    events = []
    for log in as_list(raw.get("logs"), f"{where} logs", problems):
        if not isinstance(log, dict):
            problems.append(f"{where}: log {describe(log)} is not an object, skipped")
            continue
        fields = _tags(log.get("fields"), f"{where} log fields", problems)
        name = fields.pop("event", "log")
        events.append(SpanEvent(name if isinstance(name, str) else "log", fields))
    return events


def _span(raw: dict[str, Any], services: dict[str, str], problems: list[str]) -> Span | None:
    name = text(raw.get("operationName"), "operationName", problems, "?")
    where = f"span {describe(name)}"
    trace, span = parse_id(raw.get("traceID"), 32), parse_id(raw.get("spanID"), 16)
    if trace is None or span is None:
        problems.append(f"{where}: bad traceID/spanID, skipped")
        return None
    tags = _tags(raw.get("tags"), f"{where} tags", problems)
    parent_id, links = _references(raw, trace[0], where, problems)
    start_ns = time_value(raw.get("startTime"), f"{where} startTime", problems, 1000)
    duration_ns = time_value(raw.get("duration"), f"{where} duration", problems, 1000)
    if "process" in raw:
        process = as_dict(raw.get("process"), f"{where} process", problems)
        service = text(process.get("serviceName"), f"{where} serviceName", problems, "unknown")
    else:
        pid = raw.get("processID")
        service = services.get(pid, "unknown") if isinstance(pid, str) else "unknown"
    status = str(tags.get("otel.status_code", "")).upper()
    if trace[1] is not None:
        tags[SOURCE_TRACE_ID] = trace[1]
    if span[1] is not None:
        tags[SOURCE_SPAN_ID] = span[1]
    return Span(
        trace_id=trace[0],
        span_id=span[0],
        parent_id=parent_id,
        name=name,
        service=service,
        start_ns=start_ns,
        end_ns=start_ns + duration_ns,
        error=_truthy(tags.get("error")) or status == "ERROR",
        status_message=text(tags.get("otel.status_description"), "status", problems),
        kind=text(tags.get("span.kind"), "span.kind", problems, "internal").lower()[:40],
        attributes=tags,
        events=_events(raw, where, problems),
        links=links,
    )


def _services(trace: dict[str, Any], problems: list[str]) -> dict[str, str]:
    services = {}
    for pid, process in as_dict(trace.get("processes"), "processes", problems).items():
        name = as_dict(process, f"process {describe(pid)}", problems).get("serviceName")
        services[pid] = text(name, f"process {describe(pid)} serviceName", problems, "unknown")
    return services


def parse_jaeger(traces: list[Any]) -> SpanSet:
    """Spans of Jaeger v1 traces (bare spans among them are read too); problems are listed."""
    out = SpanSet()
    problems = out.problems
    bare = [item for item in traces if is_jaeger_span(item)]
    if bare:
        traces = [*(item for item in traces if not is_jaeger_span(item)), {"spans": bare}]
    for trace in traces:
        if not isinstance(trace, dict):
            problems.append(f"trace entry {describe(trace)} is not an object, skipped")
            continue
        services = _services(trace, problems)
        for raw in as_list(trace.get("spans"), "spans", problems):
            if not isinstance(raw, dict):
                problems.append(f"span {describe(raw)} is not an object, skipped")
                continue
            span = _span(raw, services, problems)
            if span is not None:
                out.spans.append(span)
    return out
