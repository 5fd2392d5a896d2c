"""Error events: what the alert engine and the error metrics read off ended spans.

A span carries an error when it has ``tracectx.error.id`` (see `tracectx.semconv`; read through
`tracectx.contract`, the one reader, so OTLP and Jaeger input make the same events); one event is
made per such span, so an error that crossed three spans gives three events with one id. Rules
count an error id once. Metadata only sits on the origin span; the engine remembers it by id.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from tracectx import semconv as sc
from tracectx.contract import ContractView, read_sdk_span, span_ids

__all__ = ["ErrorEvent", "event_from_contract", "event_from_span", "resource_names"]

_RESOURCE_ATTRS = ("http.route", sc.ATTR_CELERY_TASK_NAME, "messaging.destination.name")
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


def event_from_contract(
    view: ContractView,
    *,
    name: str,
    attributes: Mapping[str, Any],
    trace_id: str,
    span_id: str,
    end_s: float,
    service: str = "",
) -> ErrorEvent | None:
    """The error event of any span, read through `tracectx.contract` (SDK spans, OTLP, Jaeger:
    whatever gave `view`); None when the span carries no tracectx error id."""
    if not view.error_id:
        return None
    return ErrorEvent(
        error_id=view.error_id,
        kind=view.kind or "UNKNOWN",
        code=view.code,
        error_type=view.error_type,
        role=view.role,
        resources=resource_names(name, attributes),
        trace_id=trace_id,
        span_id=span_id,
        timestamp=end_s,
        service=service,
        metadata=dict(view.metadata),
        message=view.exception_message if view.exception_type or view.stack else "",
        stack=view.stack[-_STACK_LIMIT:],
    )


def event_from_span(span: Any) -> ErrorEvent | None:
    """The error event of an ended SDK span, or None when it carries no tracectx error."""
    attrs = span.attributes
    if not attrs or not attrs.get(sc.ATTR_ID):  # the hot path: most spans carry no error
        return None
    trace_id, span_id = span_ids(span)
    resource = getattr(span, "resource", None)
    service = resource.attributes.get("service.name", "") if resource is not None else ""
    return event_from_contract(
        read_sdk_span(span),
        name=span.name,
        attributes=attrs,
        trace_id=trace_id,
        span_id=span_id,
        end_s=(span.end_time or 0) / 1e9,
        service=str(service),
    )
