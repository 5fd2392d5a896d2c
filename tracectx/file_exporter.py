"""Write spans as OTLP JSON lines (the OTel file-exporter shape the visualiser reads back).

Ids are lowercase hex, times nanosecond strings, attributes ``AnyValue`` objects — per the
OTLP/JSON encoding. One ``{"resourceSpans": [...]}`` document per line, one line per export.
"""

from __future__ import annotations

import json
import threading
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

__all__ = ["OTLPJsonFileExporter", "spans_to_otlp"]

_KIND = {"INTERNAL": 1, "SERVER": 2, "CLIENT": 3, "PRODUCER": 4, "CONSUMER": 5}
_STATUS = {"UNSET": 0, "OK": 1, "ERROR": 2}


def _value(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, list | tuple):
        return {"arrayValue": {"values": [_value(v) for v in value]}}
    return {"stringValue": str(value)}


def _attrs(attributes: Any) -> list[dict[str, Any]]:
    return [{"key": k, "value": _value(v)} for k, v in (attributes or {}).items()]


def _span(span: ReadableSpan) -> dict[str, Any]:
    ctx = span.get_span_context()
    assert ctx is not None
    return {
        "traceId": format(ctx.trace_id, "032x"),
        "spanId": format(ctx.span_id, "016x"),
        "parentSpanId": format(span.parent.span_id, "016x") if span.parent else "",
        "name": span.name,
        "kind": _KIND.get(span.kind.name, 1),
        "startTimeUnixNano": str(span.start_time or 0),
        "endTimeUnixNano": str(span.end_time or 0),
        "attributes": _attrs(span.attributes),
        "events": [
            {
                "timeUnixNano": str(e.timestamp),
                "name": e.name,
                "attributes": _attrs(e.attributes),
            }
            for e in span.events
        ],
        "links": [
            {
                "traceId": format(lk.context.trace_id, "032x"),
                "spanId": format(lk.context.span_id, "016x"),
                "attributes": _attrs(lk.attributes),
            }
            for lk in span.links
        ],
        "status": {
            "code": _STATUS.get(span.status.status_code.name, 0),
            "message": span.status.description or "",
        },
    }


def spans_to_otlp(spans: Sequence[ReadableSpan]) -> dict[str, Any]:
    """One OTLP JSON document for `spans`, grouped by resource and scope."""
    grouped: dict[Any, dict[Any, list[ReadableSpan]]] = defaultdict(lambda: defaultdict(list))
    for span in spans:
        scope = span.instrumentation_scope
        grouped[span.resource][(scope.name, scope.version) if scope else ("", None)].append(span)
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": _attrs(resource.attributes)},
                "scopeSpans": [
                    {
                        "scope": {"name": name, **({"version": version} if version else {})},
                        "spans": [_span(s) for s in members],
                    }
                    for (name, version), members in scopes.items()
                ],
            }
            for resource, scopes in grouped.items()
        ]
    }


class OTLPJsonFileExporter(SpanExporter):
    """A `SpanExporter` appending OTLP JSON lines to a file (or an open text stream)."""

    def __init__(self, target: str | Path | IO[str]) -> None:
        self._lock = threading.Lock()
        if isinstance(target, str | Path):
            self._stream: IO[str] = open(target, "a", encoding="utf-8")  # noqa: SIM115
            self._owned = True
        else:
            self._stream, self._owned = target, False

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if not spans:
            return SpanExportResult.SUCCESS
        line = json.dumps(spans_to_otlp(spans), separators=(",", ":"))
        with self._lock:
            self._stream.write(line + "\n")
            self._stream.flush()
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        with self._lock:
            if self._owned and not self._stream.closed:
                self._stream.close()
