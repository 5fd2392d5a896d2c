"""Error events: what the alert engine and the error metrics read off ended spans.

A span carries an error when it has ``tracectx.error.id`` (see `tracectx.semconv`); one event is
made per such span, so an error that crossed three spans gives three events with one id. Rules
count an error id once. Metadata only sits on the origin span; the engine remembers it by id.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from tracectx import semconv as sc

__all__ = ["ErrorEvent", "event_from_span", "resource_names"]

_RESOURCE_ATTRS = ("http.route", "celery.task.name", "messaging.destination.name")
_STACK_LIMIT = 8192


@dataclasses.dataclass(frozen=True, slots=True)
class ErrorEvent:
    """One error seen on one span."""

    error_id: str
    kind: str
    code: str
    error_type: str
    role: str
    resources: tuple[str, ...]
    trace_id: str
    span_id: str
    timestamp: float
    service: str = ""
    metadata: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    message: str = ""
    stack: str = ""

    @property
    def resource(self) -> str:
        """The most specific name of where it happened (route, task, topic, else span name)."""
        return self.resources[0]


def resource_names(name: str, attributes: Mapping[str, Any]) -> tuple[str, ...]:
    """Every name a rule's ``resource`` may match: route/task/topic first, span name last."""
    found = [str(attributes[a]) for a in _RESOURCE_ATTRS if attributes.get(a)]
    if name not in found:
        found.append(name)
    return tuple(found)


def event_from_span(span: Any) -> ErrorEvent | None:
    """The error event of an ended SDK span, or None when it carries no tracectx error."""
    attrs = span.attributes
    if not attrs:
        return None
    eid = attrs.get(sc.ATTR_ID)
    if not eid:
        return None
    ctx = span.context
    metadata = {
        key[len(sc.ATTR_META_PREFIX) :]: value
        for key, value in attrs.items()
        if key.startswith(sc.ATTR_META_PREFIX)
    }
    message, stack = "", ""
    for event in span.events:
        if event.name == "exception" and event.attributes:
            message = str(event.attributes.get("exception.message", ""))
            stack = str(event.attributes.get("exception.stacktrace", ""))[-_STACK_LIMIT:]
    resource = getattr(span, "resource", None)
    service = resource.attributes.get("service.name", "") if resource is not None else ""
    return ErrorEvent(
        error_id=str(eid),
        kind=str(attrs.get(sc.ATTR_KIND, "UNKNOWN")),
        code=str(attrs.get(sc.ATTR_CODE, "")),
        error_type=str(attrs.get(sc.ATTR_ERROR_TYPE, "")),
        role=str(attrs.get(sc.ATTR_ROLE, "")),
        resources=resource_names(span.name, attrs),
        trace_id=format(ctx.trace_id, "032x"),
        span_id=format(ctx.span_id, "016x"),
        timestamp=(span.end_time or 0) / 1e9,
        service=str(service),
        metadata=metadata,
        message=message,
        stack=stack,
    )
