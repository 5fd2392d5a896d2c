"""OTLP JSON (``{"resourceSpans": [...]}``) as the OTel file exporter and Jaeger api_v3 write."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from tracectx.viz.model import Link, Span, SpanEvent, SpanSet

__all__ = ["any_value", "parse_otlp"]

_KINDS = {1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}


def any_value(value: Any) -> Any:
    """Decode an OTLP ``AnyValue``."""
    if not isinstance(value, dict):
        return value
    for key in ("stringValue", "boolValue", "doubleValue"):
        if key in value:
            return value[key]
    if "intValue" in value:
        try:
            return int(value["intValue"])
        except (TypeError, ValueError):
            return value["intValue"]
    if "arrayValue" in value:
        return [any_value(v) for v in (value["arrayValue"] or {}).get("values", [])]
    if "kvlistValue" in value:
        return attributes((value["kvlistValue"] or {}).get("values", []))
    if "bytesValue" in value:
        return value["bytesValue"]
    return None


def attributes(items: Any) -> dict[str, Any]:
    if not isinstance(items, list):
        return {}
    return {
        str(kv["key"]): any_value(kv.get("value"))
        for kv in items
        if isinstance(kv, dict) and "key" in kv
    }


def _hex_id(raw: Any, length: int) -> str | None:
    if not isinstance(raw, str) or not raw:
        return None
    text = raw.lower()
    if len(text) == length and all(c in "0123456789abcdef" for c in text):
        return None if set(text) == {"0"} else text
    try:  # protobuf-JSON writes bytes as base64
        decoded = base64.b64decode(raw, validate=True).hex()
    except (binascii.Error, ValueError):
        return None
    return decoded if len(decoded) == length else None


def _kind(raw: Any) -> str:
    if isinstance(raw, int):
        return _KINDS.get(raw, "internal")
    if isinstance(raw, str):
        return raw.removeprefix("SPAN_KIND_").lower() or "internal"
    return "internal"


def _is_error(status: Any) -> tuple[bool, str]:
    if not isinstance(status, dict):
        return False, ""
    code = status.get("code")
    return code in (2, "STATUS_CODE_ERROR", "ERROR"), str(status.get("message") or "")


def _span(raw: dict[str, Any], service: str, problems: list[str]) -> Span | None:
    trace_id, span_id = _hex_id(raw.get("traceId"), 32), _hex_id(raw.get("spanId"), 16)
    if trace_id is None or span_id is None:
        problems.append(f"span {raw.get('name')!r}: bad traceId/spanId, skipped")
        return None
    error, message = _is_error(raw.get("status"))
    links = []
    for link in raw.get("links") or []:
        lt, ls = _hex_id(link.get("traceId"), 32), _hex_id(link.get("spanId"), 16)
        if lt and ls:
            links.append(Link(lt, ls))
    try:
        start, end = int(raw.get("startTimeUnixNano") or 0), int(raw.get("endTimeUnixNano") or 0)
    except (TypeError, ValueError):
        start = end = 0
    return Span(
        trace_id=trace_id,
        span_id=span_id,
        parent_id=_hex_id(raw.get("parentSpanId"), 16),
        name=str(raw.get("name") or "?"),
        service=service,
        start_ns=start,
        end_ns=end,
        error=error,
        status_message=message,
        kind=_kind(raw.get("kind")),
        attributes=attributes(raw.get("attributes")),
        events=[
            SpanEvent(str(e.get("name") or ""), attributes(e.get("attributes")))
            for e in raw.get("events") or []
            if isinstance(e, dict)
        ],
        links=links,
    )


def parse_otlp(doc: dict[str, Any]) -> SpanSet:
    out = SpanSet()
    for resource_spans in doc.get("resourceSpans") or []:
        if not isinstance(resource_spans, dict):
            out.problems.append("resourceSpans entry is not an object")
            continue
        resource = attributes((resource_spans.get("resource") or {}).get("attributes"))
        service = str(resource.get("service.name", "unknown"))
        scopes = resource_spans.get("scopeSpans") or resource_spans.get(
            "instrumentationLibrarySpans"
        )
        for scope in scopes or []:
            for raw in (scope or {}).get("spans") or []:
                if isinstance(raw, dict):
                    span = _span(raw, service, out.problems)
                    if span is not None:
                        out.spans.append(span)
    return out
