"""Jaeger v1 JSON: traces with ``spans``, ``references`` and a ``processes`` map, or bare spans
with the ``process`` inline (Jaeger UI's span lists).

Every part of the wrong type is skipped with a problem; the rest of the document is read.
What a Jaeger export holds beyond the analysis's needs is kept on the span model so
``--format jaeger-json`` writes it back as read: tag types (values are read as their declared
type, ``int64`` ``"500"`` as 500; a type the value cannot show, like ``binary``, is remembered),
log timestamps, a log without an ``event`` field (an unnamed event, as Jaeger's own OTLP
translation reads it), process tags, span warnings and flags, and each reference's type.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from tracectx.viz.model import Link, Span, SpanEvent, SpanSet
from tracectx.viz.sources.fields import (
    SOURCE_SPAN_ID,
    SOURCE_TRACE_ID,
    ProblemList,
    as_dict,
    as_list,
    describe,
    parse_id,
    plain_value,
    text,
    time_value,
)

__all__ = ["inferred_type", "is_jaeger_span", "parse_jaeger"]


def is_jaeger_span(item: Any) -> bool:
    """True for a bare Jaeger span object (it has a ``spanID``, and no ``spans`` of its own)."""
    return isinstance(item, dict) and "spanID" in item and "spans" not in item


_BOOLS = {"true": True, "false": False}


def inferred_type(value: Any) -> str:
    """The Jaeger tag type a value shows by itself (what an export writes without a hint)."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int64"
    if isinstance(value, float):
        return "float64"
    return "string"


def _coerce(declared: Any, value: Any) -> Any:
    """`value` as its declared Jaeger type where it is spelt otherwise (``"500"`` for int64,
    ``2`` for float64, ``"true"`` for bool); unchanged when it cannot be."""
    if declared == "int64" and isinstance(value, str) and len(value) <= 20:
        try:
            return int(value)
        except ValueError:
            return value
    if declared == "float64" and not isinstance(value, bool):
        if isinstance(value, int) and abs(value) < 2**53:
            return float(value)
        if isinstance(value, str) and len(value) <= 40:
            try:
                return float(value)
            except ValueError:
                return value
    if declared == "bool" and isinstance(value, str):
        return _BOOLS.get(value.lower(), value)
    return value


def _tags(items: Any, what: str, problems: list[str]) -> tuple[dict[str, Any], dict[str, str]]:
    """Tag values by key, read as their declared type, and the declared types that the values
    alone would not show (``binary``, or a value that is not of its type)."""
    out: dict[str, Any] = {}
    types: dict[str, str] = {}
    for tag in as_list(items, what, problems):
        if isinstance(tag, dict) and isinstance(tag.get("key"), str):
            key, declared = tag["key"], tag.get("type")
            value = plain_value(_coerce(declared, tag.get("value")), 0, problems)
            out[key] = value
            if isinstance(declared, str) and declared != inferred_type(value):
                types[key] = declared[:40]
            else:
                types.pop(key, None)
        else:
            problems.append(f"{what}: entry {describe(tag)} has no string key, skipped")
    return out, types


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
        ref_type = ref.get("refType", "CHILD_OF")
        if ref_type == "CHILD_OF" and parent_id is None and rt[0] == trace_id:
            parent_id = rs[0]
        else:
            kept = ref_type[:40] if isinstance(ref_type, str) else None
            links.append(Link(rt[0], rs[0], ref_type=kept))
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
        fields, types = _tags(log.get("fields"), f"{where} log fields", problems)
        name = fields.get("event")
        if isinstance(name, str) and "event" not in types:
            del fields["event"]
        else:  # no event field (or not a string one): unnamed, as Jaeger's OTLP mapping reads it
            name = ""
        when = log.get("timestamp")
        events.append(
            SpanEvent(
                name,
                fields,
                time_ns=time_value(when, f"{where} log timestamp", problems, 1000)
                if when is not None
                else None,
                attribute_types=types or None,
            )
        )
    return events


def _warnings(raw: Any, where: str, problems: list[str]) -> list[str] | None:
    items = as_list(raw, f"{where} warnings", problems)
    return [w if isinstance(w, str) else describe(w) for w in items] or None


def _flags(raw: Any) -> int | None:
    return raw if isinstance(raw, int) and not isinstance(raw, bool) and 0 <= raw < 2**32 else None


@dataclasses.dataclass(slots=True)
class _Process:
    service: str
    tags: dict[str, Any] | None
    types: dict[str, str] | None


def _process(raw: Any, where: str, problems: list[str]) -> _Process:
    process = as_dict(raw, where, problems)
    service = text(process.get("serviceName"), f"{where} serviceName", problems, "unknown")
    tags, types = _tags(process.get("tags"), f"{where} tags", problems)
    return _Process(service, tags or None, types or None)


_UNKNOWN = _Process("unknown", None, None)


def _span(raw: dict[str, Any], services: dict[str, _Process], problems: list[str]) -> Span | None:
    raw_name = raw.get("operationName")  # "" stays "" (a real, if unhelpful, name)
    name = "" if raw_name == "" else text(raw_name, "operationName", problems, "?")
    where = f"span {describe(name)}"
    trace, span = parse_id(raw.get("traceID"), 32), parse_id(raw.get("spanID"), 16)
    if trace is None or span is None:
        problems.append(f"{where}: bad traceID/spanID, skipped")
        return None
    tags, types = _tags(raw.get("tags"), f"{where} tags", problems)
    parent_id, links = _references(raw, trace[0], where, problems)
    start_ns = time_value(raw.get("startTime"), f"{where} startTime", problems, 1000)
    duration_ns = time_value(raw.get("duration"), f"{where} duration", problems, 1000)
    if "process" in raw:
        process = _process(raw.get("process"), f"{where} process", problems)
    else:
        pid = raw.get("processID")
        process = services.get(pid, _UNKNOWN) if isinstance(pid, str) else _UNKNOWN
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
        service=process.service,
        start_ns=start_ns,
        end_ns=start_ns + duration_ns,
        error=_truthy(tags.get("error")) or status == "ERROR",
        status_message=text(tags.get("otel.status_description"), "status", problems),
        kind=text(tags.get("span.kind"), "span.kind", problems, "internal").lower()[:40],
        attributes=tags,
        events=_events(raw, where, problems),
        links=links,
        resource_attributes=process.tags,
        attribute_types=types or None,
        resource_attribute_types=process.types,
        warnings=_warnings(raw.get("warnings"), where, problems),
        flags=_flags(raw.get("flags")),
    )


def _services(trace: dict[str, Any], problems: list[str]) -> dict[str, _Process]:
    """Each process once, so its tags are one dict shared by its spans."""
    return {
        pid: _process(process, f"process {describe(pid)}", problems)
        for pid, process in as_dict(trace.get("processes"), "processes", problems).items()
    }


def parse_jaeger(traces: list[Any]) -> SpanSet:
    """Spans of Jaeger v1 traces (bare spans among them are read too); problems are listed."""
    problems = ProblemList()
    out = SpanSet(problems=problems)
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
    out.problems = problems.closed()
    return out
