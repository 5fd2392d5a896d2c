"""Spans straight from the OTel SDK (an in-memory exporter, or any ReadableSpan list)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tracectx.viz.model import Link, Span, SpanEvent, SpanSet

__all__ = ["from_readable_spans"]


def from_readable_spans(spans: Iterable[Any]) -> SpanSet:
    """Convert SDK ``ReadableSpan`` objects to the visualiser's model."""
    out = SpanSet()
    for s in spans:
        ctx = s.context
        resource = getattr(s, "resource", None)
        service = resource.attributes.get("service.name", "unknown") if resource else "unknown"
        out.spans.append(
            Span(
                trace_id=format(ctx.trace_id, "032x"),
                span_id=format(ctx.span_id, "016x"),
                parent_id=format(s.parent.span_id, "016x") if s.parent else None,
                name=s.name,
                service=str(service),
                start_ns=s.start_time or 0,
                end_ns=s.end_time or 0,
                error=s.status.status_code.name == "ERROR",
                status_message=s.status.description or "",
                kind=s.kind.name.lower(),
                attributes=dict(s.attributes or {}),
                events=[
                    SpanEvent(e.name, dict(e.attributes or {}), e.timestamp or None)
                    for e in s.events
                ],
                links=[
                    Link(format(lk.context.trace_id, "032x"), format(lk.context.span_id, "016x"))
                    for lk in s.links
                ],
            )
        )
    return out
