"""Error paths written back over OTLP as small traces: propagation graphs inside Jaeger.

Each path becomes its own trace from service ``tracectx``: a root span ``<kind> <code>`` and one
span per hop — origin, each propagator, then the absorber, the escape or "unobserved" — each the
child of the hop before, so Jaeger's trace view and trace graph draw the path as a chain. Every
hop span is linked to the original span (Jaeger: one click to the original trace) and carries the
hop's role, service, operation, the error's kind, code, id and redacted metadata, with the
original span's start and end times.
"""

from __future__ import annotations

from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import Link, SpanContext, SpanKind, TraceFlags

from tracectx import semconv as sc
from tracectx.recording import meta_attributes

__all__ = ["PathWriter"]

SERVICE = "tracectx"
ATTR_SOURCE_TRACE = "tracectx.source.trace_id"
ATTR_SOURCE_SPAN = "tracectx.source.span_id"
ATTR_OUTCOME = "tracectx.error.outcome"


def _link(trace_id: str, span_id: str) -> list[Link]:
    try:
        ctx = SpanContext(
            int(trace_id, 16), int(span_id, 16), is_remote=True, trace_flags=TraceFlags(1)
        )
    except ValueError:
        return []
    return (
        [Link(ctx, {ATTR_SOURCE_TRACE: trace_id, ATTR_SOURCE_SPAN: span_id})]
        if ctx.is_valid
        else []
    )


class PathWriter:
    """A path handler for `SpanStream` that exports each path as a trace."""

    def __init__(self, exporter: SpanExporter) -> None:
        self.provider = TracerProvider(resource=Resource.create({"service.name": SERVICE}))
        self.provider.add_span_processor(BatchSpanProcessor(exporter))
        self.tracer = self.provider.get_tracer("tracectx.stream")

    @classmethod
    def over_http(cls, endpoint: str) -> PathWriter:
        """Export with OTLP/HTTP to `endpoint` (e.g. ``http://jaeger:4318``)."""
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return cls(OTLPSpanExporter(endpoint.rstrip("/") + "/v1/traces"))

    def __call__(self, record: dict[str, Any]) -> None:
        hops: list[tuple[str, dict[str, Any]]] = [("origin", record["origin"])]
        hops += [("propagated", h) for h in record["propagators"]]
        if record["absorber"]:
            hops.append(("absorbed", record["absorber"]))
        starts = [int(h["start_ns"]) for _, h in hops if h.get("start_ns")]
        ends = [int(h["end_ns"]) for _, h in hops if h.get("end_ns")]
        common: dict[str, Any] = {
            sc.ATTR_KIND: record["kind"],
            sc.ATTR_CODE: record["code"] or "",
            sc.ATTR_ID: record["error_id"] or "",
            sc.ATTR_ERROR_TYPE: record["type"] or "",
            ATTR_OUTCOME: record["outcome"],
            ATTR_SOURCE_TRACE: record["trace_id"],
        }
        root = self.tracer.start_span(
            f"{record['kind']} {record['code'] or record['type']}".strip(),
            context=trace.set_span_in_context(trace.INVALID_SPAN),
            attributes={**common, **meta_attributes(record["metadata"]), "exact": record["exact"]},
            start_time=min(starts) if starts else None,
        )
        parent = root
        for role, hop in hops:
            span = self.tracer.start_span(
                f"{role}: {hop.get('service', '?')} {hop.get('name', hop['span_id'])}",
                context=trace.set_span_in_context(parent),
                kind=SpanKind.INTERNAL,
                links=_link(record["trace_id"], hop["span_id"]),
                attributes={
                    **common,
                    sc.ATTR_ROLE: role,
                    ATTR_SOURCE_SPAN: hop["span_id"],
                    "service.name.original": hop.get("service", ""),
                },
                start_time=hop.get("start_ns"),
            )
            if role == "origin":
                span.set_attribute("exception.message", record["message"] or "")
            span.end(end_time=hop.get("end_ns"))
            parent = span
        if record["outcome"] != "absorbed":  # escaped, or unobserved (fire-and-forget)
            tail = self.tracer.start_span(
                "escaped" if record["outcome"] == "escaped" else "unobserved",
                context=trace.set_span_in_context(parent),
                attributes=common,
                start_time=max(ends) if ends else None,
            )
            tail.end(end_time=max(ends) if ends else None)
        root.end(end_time=max(ends) if ends else None)

    def shutdown(self) -> None:
        self.provider.shutdown()
