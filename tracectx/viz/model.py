"""One span model for every input format (SDK spans, OTLP JSON, Jaeger JSON).

Bound error metadata (``tracectx.error.meta.<key>``) whose key looks sensitive is masked when a
span or event is built, so no output of the visualiser can show a secret that a span file
written elsewhere still carries.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any

from tracectx import semconv as sc
from tracectx.config import settings
from tracectx.redaction import is_sensitive, redact_value

__all__ = ["Link", "Span", "SpanEvent", "SpanSet", "redact_meta"]

_new = object.__new__


def _meta_value(key: str, value: Any) -> Any:
    if not key.startswith(sc.ATTR_META_PREFIX):
        return value
    if is_sensitive(key.removeprefix(sc.ATTR_META_PREFIX)):
        return settings().redact_mask
    return redact_value(value)


def redact_meta(attributes: dict[str, Any]) -> dict[str, Any]:
    """`attributes` with ``tracectx.error.meta.*`` values masked where `is_sensitive` flags the
    key (nested values of the others walked too); the same dict when it holds no metadata."""
    try:  # runs for every span and event read: the scan stays in C
        if not any(map(str.startswith, attributes, itertools.repeat(sc.ATTR_META_PREFIX))):
            return attributes
    except TypeError:  # a key that is not a str
        if not any(isinstance(k, str) and k.startswith(sc.ATTR_META_PREFIX) for k in attributes):
            return attributes
    return {k: _meta_value(k, v) if isinstance(k, str) else v for k, v in attributes.items()}


@dataclasses.dataclass(slots=True)
class SpanEvent:
    """A span event (a Jaeger log). `time_ns` is when it happened, None when the source did not
    say; `attribute_types` holds the source's type name for attributes whose value alone does
    not tell it (a Jaeger ``binary`` tag), so a Jaeger export writes them back as read."""

    name: str
    attributes: dict[str, Any]
    time_ns: int | None = None
    attribute_types: dict[str, str] | None = None

    def __post_init__(self) -> None:
        self.attributes = redact_meta(self.attributes)

    @classmethod
    def fast(cls, name: str, attributes: dict[str, Any], time_ns: int | None) -> SpanEvent:
        """`SpanEvent(name, attributes, time_ns)` without the dataclass ``__init__``, for
        readers whose values are already the right types; metadata redacted as `__post_init__`
        does. Hand-written because the span stream builds an event per event it reads."""
        event = _new(cls)
        event.name = name
        event.attributes = redact_meta(attributes) if attributes else attributes
        event.time_ns = time_ns
        event.attribute_types = None
        return event


@dataclasses.dataclass(slots=True)
class Link:
    """A link or FOLLOWS_FROM reference: an async edge from (trace_id, span_id) to a span."""

    trace_id: str
    span_id: str
    ref_type: str | None = None  # Jaeger's refType when read from Jaeger (CHILD_OF, FOLLOWS_FROM)


@dataclasses.dataclass(slots=True)
class Span:
    """A finished span, ids as lowercase hex (as Jaeger shows them).

    The optional fields after `links` keep what a source said beyond the analysis's needs, so
    an export reproduces it: `resource_attributes` (OTLP resource / Jaeger process tags, often
    one dict shared by a process's spans), the source's type names for attributes whose value
    alone does not tell it (`attribute_types`, `resource_attribute_types`), Jaeger's span
    `warnings` and `flags`. None (not an empty container) when absent: a million spans read
    from a file should not carry four empty containers each.
    """

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
    resource_attributes: dict[str, Any] | None = None
    attribute_types: dict[str, str] | None = None
    resource_attribute_types: dict[str, str] | None = None
    warnings: list[str] | None = None
    flags: int | None = None

    def __post_init__(self) -> None:
        self.attributes = redact_meta(self.attributes)
        if self.resource_attributes:
            self.resource_attributes = redact_meta(self.resource_attributes)

    @classmethod
    def fast(
        cls,
        trace_id: str,
        span_id: str,
        parent_id: str | None,
        name: str,
        service: str,
        start_ns: int,
        end_ns: int,
        error: bool,
        status_message: str,
        kind: str,
        attributes: dict[str, Any],
        events: list[SpanEvent],
        links: list[Link],
    ) -> Span:
        """`Span` of the fields up to `links` (the rest None), without the dataclass
        ``__init__``: for readers whose values are already the right types. Metadata is
        redacted as `__post_init__` does. Hand-written because the span stream builds a span per
        span it reads, and ``__init__`` + ``__post_init__`` cost about twice this."""
        span = _new(cls)
        span.trace_id = trace_id
        span.span_id = span_id
        span.parent_id = parent_id
        span.name = name
        span.service = service
        span.start_ns = start_ns
        span.end_ns = end_ns
        span.error = error
        span.status_message = status_message
        span.kind = kind
        span.attributes = redact_meta(attributes) if attributes else attributes
        span.events = events
        span.links = links
        span.resource_attributes = None
        span.attribute_types = None
        span.resource_attribute_types = None
        span.warnings = None
        span.flags = None
        return span

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
