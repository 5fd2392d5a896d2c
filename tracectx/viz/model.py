"""One span model for every input format (SDK spans, OTLP JSON, Jaeger JSON)."""

from __future__ import annotations

import dataclasses
from typing import Any

__all__ = ["Link", "Span", "SpanEvent", "SpanSet"]


@dataclasses.dataclass(slots=True)
class SpanEvent:
    name: str
    attributes: dict[str, Any]


@dataclasses.dataclass(slots=True)
class Link:
    """A link or FOLLOWS_FROM reference: an async edge from (trace_id, span_id) to a span."""

    trace_id: str
    span_id: str


@dataclasses.dataclass(slots=True)
class Span:
    """A finished span, ids as lowercase hex (as Jaeger shows them)."""

    trace_id: str
    span_id: str
    parent_id: str | None
    name: str
    service: str
    start_ns: int
    end_ns: int
    error: bool = False
    status_message: str = ""
    kind: str = "internal"  # internal / server / client / producer / consumer
    attributes: dict[str, Any] = dataclasses.field(default_factory=dict)
    events: list[SpanEvent] = dataclasses.field(default_factory=list)
    links: list[Link] = dataclasses.field(default_factory=list)

    @property
    def duration_ms(self) -> float:
        return max(self.end_ns - self.start_ns, 0) / 1e6


@dataclasses.dataclass(slots=True)
class SpanSet:
    """Spans read from one source, and what was wrong with the input (never raised)."""

    spans: list[Span] = dataclasses.field(default_factory=list)
    problems: list[str] = dataclasses.field(default_factory=list)

    def extend(self, other: SpanSet) -> None:
        self.spans.extend(other.spans)
        self.problems.extend(other.problems)
