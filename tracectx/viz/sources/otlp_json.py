"""OTLP JSON (``{"resourceSpans": [...]}``) as the OTel file exporter and Jaeger api_v3 write.

Every part of the wrong type is skipped with a problem; the rest of the document is read.
"""

from __future__ import annotations

from typing import Any

from tracectx.viz.model import Link, Span, SpanEvent, SpanSet
from tracectx.viz.sources.fields import (
    MAX_VALUE_DEPTH,
    SOURCE_SPAN_ID,
    SOURCE_TRACE_ID,
    TOO_DEEP,
    ProblemList,
    as_dict,
    as_list,
    describe,
    parse_id,
    plain_value,
    text,
    time_value,
)

__all__ = ["KINDS", "any_value", "attributes", "kind_name", "parse_otlp"]

KINDS = {1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}


def any_value(value: Any, _depth: int = 0, problems: list[str] | None = None) -> Any:
    """Decode an OTLP ``AnyValue`` (arrays and kvlists at most `MAX_VALUE_DEPTH` deep); a
    malformed one is None, and listed in `problems` when given."""
    sink: list[str] = ProblemList() if problems is None else problems
    if not isinstance(value, dict):
        return plain_value(value, _depth, sink)
    if _depth >= MAX_VALUE_DEPTH:
        sink.append(f"attribute value nested deeper than {MAX_VALUE_DEPTH}, cut")
        return TOO_DEEP
    for key in ("stringValue", "boolValue", "doubleValue", "bytesValue"):
        if key in value:
            return plain_value(value[key], _depth, sink)
    if "intValue" in value:
        raw = value["intValue"]
        if isinstance(raw, str) and len(raw) <= 24:
            try:
                return int(raw)
            except ValueError:
                return raw
        return plain_value(raw, _depth, sink)
    if "arrayValue" in value:
        inner = as_dict(value["arrayValue"], "arrayValue", sink)
        items = as_list(inner.get("values"), "arrayValue values", sink)
        return [any_value(v, _depth + 1, sink) for v in items]
    if "kvlistValue" in value:
        inner = as_dict(value["kvlistValue"], "kvlistValue", sink)
        return attributes(inner.get("values"), _depth + 1, sink)
    if value:
        sink.append(f"attribute value with unknown keys {describe(list(value)[:3])}, read as null")
    return None


def attributes(items: Any, _depth: int = 0, problems: list[str] | None = None) -> dict[str, Any]:
    """OTLP ``KeyValue`` list → dict; entries without a string key are skipped (and listed)."""
    sink: list[str] = ProblemList() if problems is None else problems
    out: dict[str, Any] = {}
    for kv in as_list(items, "attributes", sink):
        if isinstance(kv, dict) and isinstance(kv.get("key"), str):
            out[kv["key"]] = any_value(kv.get("value"), _depth, sink)
        else:
            sink.append(f"attribute {describe(kv)} has no string key, skipped")
    return out


def kind_name(raw: Any) -> str:
    """OTLP's span kind (a number or ``SPAN_KIND_SERVER``-style name) as a lowercase word."""
    if isinstance(raw, int) and not isinstance(raw, bool):
        return KINDS.get(raw, "internal")
    if isinstance(raw, str) and raw:
        return raw.removeprefix("SPAN_KIND_").lower()[:40] or "internal"
    return "internal"


def _is_error(status: Any, problems: list[str]) -> tuple[bool, str]:
    status = as_dict(status, "status", problems)
    code = status.get("code")
    error = isinstance(code, int | str) and code in (2, "STATUS_CODE_ERROR", "ERROR")
    return error and not isinstance(code, bool), text(status.get("message"), "status", problems)


def _span(raw: dict[str, Any], service: str, problems: list[str]) -> Span | None:
    name = text(raw.get("name"), "span name", problems, "?")
    where = f"span {describe(name)}"
    trace, span = parse_id(raw.get("traceId"), 32), parse_id(raw.get("spanId"), 16)
    if trace is None or span is None:
        problems.append(f"{where}: bad traceId/spanId, skipped")
        return None
    parent = parse_id(raw.get("parentSpanId"), 16)
    error, message = _is_error(raw.get("status"), problems)
    links = []
    for link in as_list(raw.get("links"), f"{where} links", problems):
        ids = link if isinstance(link, dict) else {}
        lt, ls = parse_id(ids.get("traceId"), 32), parse_id(ids.get("spanId"), 16)
        if lt and ls:
            links.append(Link(lt[0], ls[0]))
        else:
            problems.append(f"{where}: link {describe(link)} without trace/span id, skipped")
    events = []
    for event in as_list(raw.get("events"), f"{where} events", problems):
        if isinstance(event, dict):
            event_name = text(event.get("name"), f"{where} event name", problems)
            when = event.get("timeUnixNano")
            events.append(
                SpanEvent(
                    event_name,
                    attributes(event.get("attributes"), 0, problems),
                    None
                    if when is None or when == ""
                    else time_value(when, f"{where} event time", problems) or None,
                )
            )
        else:
            problems.append(f"{where}: event {describe(event)} is not an object, skipped")
    attrs = attributes(raw.get("attributes"), 0, problems)
    if trace[1] is not None:
        attrs[SOURCE_TRACE_ID] = trace[1]
    if span[1] is not None:
        attrs[SOURCE_SPAN_ID] = span[1]
    return Span(
        trace_id=trace[0],
        span_id=span[0],
        parent_id=parent[0] if parent else None,
        name=name,
        service=service,
        start_ns=time_value(raw.get("startTimeUnixNano"), f"{where} start", problems),
        end_ns=time_value(raw.get("endTimeUnixNano"), f"{where} end", problems),
        error=error,
        status_message=message,
        kind=kind_name(raw.get("kind")),
        attributes=attrs,
        events=events,
        links=links,
    )


def parse_otlp(doc: dict[str, Any]) -> SpanSet:
    """Spans of one OTLP JSON document; wrongly typed parts are listed in ``problems``."""
    problems = ProblemList()
    out = SpanSet(problems=problems)
    for resource_spans in as_list(doc.get("resourceSpans"), "resourceSpans", problems):
        if not isinstance(resource_spans, dict):
            problems.append("resourceSpans entry is not an object")
            continue
        resource = as_dict(resource_spans.get("resource"), "resource", problems)
        service_name = attributes(resource.get("attributes"), 0, problems).get("service.name")
        service = text(service_name, "service.name", problems, "unknown")
        scopes = resource_spans.get("scopeSpans") or resource_spans.get(
            "instrumentationLibrarySpans"
        )
        for scope in as_list(scopes, "scopeSpans", problems):
            for raw in as_list(as_dict(scope, "scope", problems).get("spans"), "spans", problems):
                if not isinstance(raw, dict):
                    problems.append(f"span {describe(raw)} is not an object, skipped")
                    continue
                parsed = _span(raw, service, problems)
                if parsed is not None:
                    out.spans.append(parsed)
    out.problems = problems.closed()
    return out
