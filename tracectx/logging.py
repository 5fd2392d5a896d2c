"""Log lines that carry the trace and the error: structlog processors and a stdlib filter.

Processor order (put them before the renderer, after ``merge_contextvars``)::

    structlog.configure(processors=[
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        tracectx.logging.add_trace_ids,     # trace_id / span_id as Jaeger shows them
        tracectx.logging.add_bound_metadata,# metadata bound with tracectx.bind
        tracectx.logging.add_error_fields,  # error_kind / error_code / error_id / error_meta
        tracectx.logging.level_by_kind,     # level from the kind's policy
        structlog.processors.JSONRenderer(),
    ])

``level_by_kind`` runs after ``add_error_fields`` (it reads ``error_kind``) and after
``add_log_level`` (which sets the method's level and would overwrite the kind's), before anything
that renders the level.
"""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import Any

from opentelemetry import trace

from tracectx.classify import classify
from tracectx.context import get_bound
from tracectx.errors import TracedError, error_id
from tracectx.kinds import KindError, get_kind
from tracectx.redaction import redact

__all__ = [
    "TracectxLogFilter",
    "add_bound_metadata",
    "add_error_fields",
    "add_trace_ids",
    "level_by_kind",
]

EventDict = MutableMapping[str, Any]


def _current_ids() -> tuple[str, str] | None:
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None
    return trace.format_trace_id(ctx.trace_id), trace.format_span_id(ctx.span_id)


def _find_exception(event_dict: EventDict) -> BaseException | None:
    for key in ("exc_info", "exception", "error", "exc"):
        value = event_dict.get(key)
        if isinstance(value, BaseException):
            return value
        if isinstance(value, tuple) and len(value) == 3 and isinstance(value[1], BaseException):
            return value[1]
    return None


def _error_fields(exc: BaseException) -> dict[str, Any]:
    kind = classify(exc)
    fields: dict[str, Any] = {
        "error_kind": kind.name,
        "error_code": exc.code if isinstance(exc, TracedError) else kind.name.lower(),
        "error_id": error_id(exc),
    }
    if isinstance(exc, TracedError) and exc.metadata:
        fields["error_meta"] = redact(exc.metadata)
    return fields


def add_trace_ids(logger: Any, method_name: str, event_dict: EventDict) -> EventDict:
    """Add ``trace_id`` and ``span_id`` (hex) of the current span, if there is one."""
    ids = _current_ids()
    if ids is not None:
        event_dict.setdefault("trace_id", ids[0])
        event_dict.setdefault("span_id", ids[1])
    return event_dict


def add_bound_metadata(logger: Any, method_name: str, event_dict: EventDict) -> EventDict:
    """Add metadata bound with `tracectx.bind` (redacted); explicit keys win."""
    for key, value in redact(get_bound()).items():
        event_dict.setdefault(key, value)
    return event_dict


def add_error_fields(logger: Any, method_name: str, event_dict: EventDict) -> EventDict:
    """Add ``error_kind``, ``error_code``, ``error_id`` and ``error_meta`` for a logged error."""
    exc = _find_exception(event_dict)
    if exc is not None:
        for key, value in _error_fields(exc).items():
            event_dict.setdefault(key, value)
    return event_dict


def level_by_kind(logger: Any, method_name: str, event_dict: EventDict) -> EventDict:
    """Set ``level`` from the error kind's policy (TRANSIENT → warning, FATAL → critical)."""
    name = event_dict.get("error_kind")
    if isinstance(name, str):
        try:
            level = get_kind(name).policy.log_level
        except KindError:
            return event_dict
        event_dict["level"] = logging.getLevelName(level).lower()
    return event_dict


class TracectxLogFilter(logging.Filter):
    """stdlib logging: adds ``trace_id``/``span_id``/``error_*`` to records; by default also
    sets the record's level from the error kind (``adjust_level=False`` to keep it).

    Use ``%(trace_id)s`` in a format string; records outside a span get ``"-"``.
    """

    def __init__(self, name: str = "", *, adjust_level: bool = True) -> None:
        super().__init__(name)
        self.adjust_level = adjust_level

    def filter(self, record: logging.LogRecord) -> bool:
        ids = _current_ids()
        record.trace_id, record.span_id = ids if ids else ("-", "-")
        exc = record.exc_info[1] if record.exc_info else None
        if exc is None:
            candidate = getattr(record, "error", None)
            exc = candidate if isinstance(candidate, BaseException) else None
        if exc is not None:
            fields = _error_fields(exc)
            for key, value in fields.items():
                setattr(record, key, value)
            if self.adjust_level:
                level = get_kind(fields["error_kind"]).policy.log_level
                record.levelno, record.levelname = level, logging.getLevelName(level)
        else:
            record.error_kind = record.error_code = record.error_id = "-"
        return True
