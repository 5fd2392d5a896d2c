"""One span model for every input format (SDK spans, OTLP JSON, Jaeger JSON).

Bound error metadata (``tracectx.error.meta.<key>``) whose key looks sensitive is masked when a
span or event is built, so no output of the visualiser can show a secret that a span file
written elsewhere still carries.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from tracectx import semconv as sc
from tracectx.config import settings
from tracectx.redaction import is_sensitive, redact_value

__all__ = ["Link", "Span", "SpanEvent", "SpanSet", "redact_meta"]


def _meta_value(key: str, value: Any) -> Any:
    if not key.startswith(sc.ATTR_META_PREFIX):
        return value
    if is_sensitive(key.removeprefix(sc.ATTR_META_PREFIX)):
        return settings().redact_mask
    return redact_value(value)


def redact_meta(attributes: dict[str, Any]) -> dict[str, Any]:
    """`attributes` with ``tracectx.error.meta.*`` values masked where `is_sensitive` flags the
    key (nested values of the others walked too); the same dict when it holds no metadata."""
    if not any(isinstance(k, str) and k.startswith(sc.ATTR_META_PREFIX) for k in attributes):
        return attributes
    return {k: _meta_value(k, v) if isinstance(k, str) else v for k, v in attributes.items()}


@dataclasses.dataclass(slots=True)
class SpanEvent:
    name: str
    attributes: dict[str, Any]

    def __post_init__(self) -> None:
        self.attributes = redact_meta(self.attributes)


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

    def __post_init__(self) -> None:
        self.attributes = redact_meta(self.attributes)

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
