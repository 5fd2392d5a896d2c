"""Jaeger: deep links that highlight a path's spans, and annotated Jaeger JSON for the UI upload.

The export is the traces as read, plus what the analysis found: each span on an error path gets
``tracectx.error.role`` = ``origin`` / ``propagated`` / ``absorbed`` (the vocabulary tracectx
writes at runtime, so one Jaeger search, ``tracectx.error.role=origin``, finds both; a span that
already carries the tag keeps its own), and the span an error escaped from also
``tracectx.viz.escaped=true``. A span read from a Jaeger export is written back as read: typed
tags (a status code stays an ``int64``), log timestamps, process tags, warnings and flags, and
no tag twice. Spans read from OTLP get the tags Jaeger itself would show for them (``span.kind``
unless internal, ``error=true``, ``otel.status_description``) when they lack them.
"""

from __future__ import annotations

import json
import math
from typing import Any
from urllib.parse import quote

from tracectx import semconv as sc
from tracectx.viz.analysis import TraceAnalysis
from tracectx.viz.model import Span, SpanEvent
from tracectx.viz.renderers.paths import roles
from tracectx.viz.sources.jaeger_json import inferred_type

__all__ = ["ESCAPED_TAG", "annotated_jaeger_json", "jaeger_link"]

ESCAPED_TAG = "tracectx.viz.escaped"
_ROLE_TAG = {
    "origin": sc.ROLE_ORIGIN,
    "propagated": sc.ROLE_PROPAGATED,
    "escaped": sc.ROLE_PROPAGATED,  # the last span it left; flagged with ESCAPED_TAG too
    "absorbed": sc.ROLE_ABSORBED,
}


def jaeger_link(base_url: str, analysis: TraceAnalysis) -> str:
    """``{base}/trace/{id}?uiFind=<span ids>``: opens the trace with the error paths highlighted."""
    ids: dict[str, None] = {}  # ordered and deduplicated in linear time
    for err in analysis.errors:
        ids.update(dict.fromkeys(err.span_ids))
    link = f"{base_url.rstrip('/')}/trace/{analysis.trace_id}"
    return f"{link}?uiFind={quote(' '.join(ids))}" if ids else link


def _tag(key: str, value: Any, types: dict[str, str] | None) -> dict[str, Any]:
    """One Jaeger tag: the type the source declared, else the one the value shows; values
    JSON cannot hold as such (arrays, maps, NaN) become strings, as Jaeger writes OTLP ones."""
    if isinstance(value, dict | list):
        value = json.dumps(value, separators=(",", ":"), default=str)
    elif isinstance(value, float) and not math.isfinite(value):
        value = str(value)
    elif value is None:
        value = ""
    declared = types.get(key) if types else None
    return {"key": key, "type": declared or inferred_type(value), "value": value}


def _tags(span: Span, role: str | None) -> list[dict[str, Any]]:
    attrs = span.attributes
    tags = [_tag(k, v, span.attribute_types) for k, v in attrs.items()]
    if "span.kind" not in attrs and span.kind != "internal":
        tags.append(_tag("span.kind", span.kind, None))
    if span.error and "error" not in attrs:
        tags.append(_tag("error", True, None))
    if span.status_message and "otel.status_description" not in attrs:
        tags.append(_tag("otel.status_description", span.status_message, None))
    if role is not None and sc.ATTR_ROLE not in attrs:
        tags.append(_tag(sc.ATTR_ROLE, _ROLE_TAG[role], None))
    if role == "escaped" and ESCAPED_TAG not in attrs:
        tags.append(_tag(ESCAPED_TAG, True, None))
    return tags


def _log(event: SpanEvent, span: Span) -> dict[str, Any]:
    fields = [_tag("event", event.name, None)] if event.name else []
    fields += [_tag(k, v, event.attribute_types) for k, v in event.attributes.items()]
    when = event.time_ns if event.time_ns is not None else span.start_ns
    return {"timestamp": when // 1000, "fields": fields}


def _references(span: Span) -> list[dict[str, Any]]:
    refs = []
    if span.parent_id:
        refs.append({"refType": "CHILD_OF", "traceID": span.trace_id, "spanID": span.parent_id})
    refs += [
        {"refType": lk.ref_type or "FOLLOWS_FROM", "traceID": lk.trace_id, "spanID": lk.span_id}
        for lk in span.links
    ]
    return refs


def _process_key(span: Span) -> tuple[str, str]:
    """Spans share a process when service and process tags (with their types) are equal."""
    tags = [_tag(k, v, span.resource_attribute_types) for k, v in _process_tags(span).items()]
    return span.service, json.dumps(tags, sort_keys=True, default=str)


def _process_tags(span: Span) -> dict[str, Any]:
    resource = span.resource_attributes or {}
    return {k: v for k, v in resource.items() if k != "service.name"}


def _trace(analysis: TraceAnalysis) -> dict[str, Any]:
    role_of = roles(analysis)
    processes: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {}
    by_resource: dict[int, tuple[str, str]] = {}  # a process's shared dict: one key per dict
    spans = []
    for span in analysis.spans.values():
        resource_id = id(span.resource_attributes)
        key = by_resource.get(resource_id) if span.resource_attributes is not None else None
        if key is None or key[0] != span.service:
            key = _process_key(span)
            if span.resource_attributes is not None:
                by_resource[resource_id] = key
        if key not in processes:
            tags = _process_tags(span)
            process = {
                "serviceName": span.service,
                "tags": [_tag(k, v, span.resource_attribute_types) for k, v in tags.items()],
            }
            processes[key] = (f"p{len(processes) + 1}", process)
        out: dict[str, Any] = {
            "traceID": span.trace_id,
            "spanID": span.span_id,
            "operationName": span.name,
            "references": _references(span),
            "startTime": span.start_ns // 1000,
            "duration": max(span.end_ns - span.start_ns, 0) // 1000,
            "tags": _tags(span, role_of.get(span.span_id)),
            "logs": [_log(e, span) for e in span.events],
            "processID": processes[key][0],
            "warnings": span.warnings or None,
        }
        if span.flags is not None:
            out["flags"] = span.flags
        spans.append(out)
    return {
        "traceID": analysis.trace_id,
        "spans": spans,
        "processes": dict(processes.values()),
        "warnings": None,
    }


def annotated_jaeger_json(analyses: list[TraceAnalysis]) -> dict[str, Any]:
    """Jaeger v1 JSON of the traces (what Jaeger's UI uploads), annotated with the error roles
    (see the module docstring)."""
    return {"data": [_trace(a) for a in analyses]}
