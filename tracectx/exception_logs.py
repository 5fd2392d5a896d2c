"""Exceptions as OTel log records: the ``OTEL_SEMCONV_EXCEPTION_SIGNAL_OPT_IN`` opt-in.

Semantic conventions deprecate the ``exception`` span event in favour of an exception recorded
on a log record, and ask instrumentations that emit the event to honour
``OTEL_SEMCONV_EXCEPTION_SIGNAL_OPT_IN`` (a comma-separated list, read here case-insensitively):

* ``logs`` — the exception is a log record only (no span event);
* ``logs/dup`` — both, for a phased rollout (wins over ``logs`` when both are listed);
* anything else, or unset — the span event only, as before.

The record carries what the span event carries — ``exception.type`` (tracectx's type name, the
span's ``error.type``), ``exception.message``, ``exception.stacktrace`` (only when the kind's
policy records stacks, like the event) and ``tracectx.error.id`` — plus the error's kind and
code, so a log pipeline can classify it without the span. Its context is the span's (trace and
span ids), its event name `EVENT_NAME` (the conventions' "event name considerations" recommend a
name for the error's category and advise against the generic ``exception``; the messaging
conventions define no exception event of their own), its severity the kind's log level
(TRANSIENT → WARN, BUSINESS and UNKNOWN → ERROR, FATAL → FATAL by default). The exception
instance goes to ``Logger.emit(exception=...)`` where the logger takes it (OpenTelemetry 1.42+),
as the conventions ask, except for kinds whose policy records no stack (the SDK would fill in
``exception.stacktrace`` from it). It goes out through the OTel logs API
(``opentelemetry._logs``; keyword ``emit`` needs 1.38, the declared minimum), so without a
configured `LoggerProvider` it costs nothing and goes nowhere.

`tracectx.recording` calls `record_exception` where it would add the ``exception`` event.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import logging
import os
import time
import traceback
from typing import Any

from opentelemetry import _logs, trace
from opentelemetry._logs import SeverityNumber
from opentelemetry.trace import Span

from tracectx import semconv
from tracectx.errors import TracedError, type_name
from tracectx.kinds import ErrorKind, policy_for
from tracectx.tracing import TRACER_NAME, VERSION, ProviderCache

__all__ = [
    "ENV_VAR",
    "EVENT_NAME",
    "MAX_BODY",
    "Signal",
    "emit",
    "logger",
    "record_exception",
    "severity_of",
    "signal",
]

ENV_VAR = "OTEL_SEMCONV_EXCEPTION_SIGNAL_OPT_IN"
#: The log record's event name (readers select exception records by it).
EVENT_NAME = semconv.LOG_EVENT_EXCEPTION
#: Characters of the record's body (``<type>: <message>``); the attributes keep the full text.
MAX_BODY = 512

_SEVERITIES = (
    (logging.CRITICAL, SeverityNumber.FATAL),
    (logging.ERROR, SeverityNumber.ERROR),
    (logging.WARNING, SeverityNumber.WARN),
    (logging.INFO, SeverityNumber.INFO),
)


@dataclasses.dataclass(frozen=True, slots=True)
class Signal:
    """Where exceptions go: as ``exception`` span events, as log records, or both."""

    events: bool
    logs: bool


_log = logging.getLogger("tracectx")
_EVENTS_ONLY = Signal(events=True, logs=False)
_signal_cache: tuple[str | None, Signal] = (None, _EVENTS_ONLY)


def signal() -> Signal:
    """The exception signal ``OTEL_SEMCONV_EXCEPTION_SIGNAL_OPT_IN`` asks for now (read each
    call, parsed once per distinct value)."""
    global _signal_cache
    raw = os.environ.get(ENV_VAR)
    cached_raw, cached = _signal_cache
    if raw == cached_raw:
        return cached
    values = {v.strip().lower() for v in (raw or "").split(",")}
    if "logs/dup" in values:
        found = Signal(events=True, logs=True)
    elif "logs" in values:
        found = Signal(events=False, logs=True)
    else:
        found = _EVENTS_ONLY
    _signal_cache = (raw, found)
    return found


_loggers: ProviderCache[_logs.LoggerProvider, _logs.Logger] = ProviderCache(
    lambda: _logs.get_logger_provider(), lambda p: p.get_logger(TRACER_NAME, VERSION)
)


def logger(provider: _logs.LoggerProvider | None = None) -> _logs.Logger:
    """The ``tracectx`` logger of `provider` (default: the global one, cached by identity)."""
    return _loggers.get(provider)


def severity_of(kind: ErrorKind) -> SeverityNumber:
    """The record's severity: the kind's policy log level, as an OTel severity number."""
    level = policy_for(kind).log_level
    for threshold, number in _SEVERITIES:
        if level >= threshold:
            return number
    return SeverityNumber.DEBUG


@functools.lru_cache(maxsize=64)
def _takes_exception(logger_type: type[_logs.Logger]) -> bool:
    """Whether `logger_type.emit` accepts ``exception=`` (the API added it in 1.42; loggers
    written against 1.38 to 1.41 raise TypeError on it). Cached per class, a bounded set."""
    try:
        params = inspect.signature(logger_type.emit).parameters
    except (TypeError, ValueError):  # pragma: no cover - a C or odd callable: don't guess
        return False
    return "exception" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def emit(
    span: Span,
    exc: BaseException,
    error_id: str,
    kind: ErrorKind,
    *,
    logger_provider: _logs.LoggerProvider | None = None,
) -> None:
    """Emit the exception log record of `exc` (id `error_id`, of `kind`) in `span`'s context."""
    exc_type = type_name(exc)
    message = str(exc)
    attributes: dict[str, str] = {
        semconv.EXC_TYPE: exc_type,
        semconv.EXC_MESSAGE: message,
        semconv.ATTR_ID: error_id,
        semconv.ATTR_KIND: kind.name,
        semconv.ATTR_CODE: exc.code if isinstance(exc, TracedError) else kind.name.lower(),
    }
    record_stack = policy_for(kind).record_stack
    if record_stack:
        attributes[semconv.EXC_STACKTRACE] = "".join(traceback.format_exception(exc))
    severity = severity_of(kind)
    target = logger(logger_provider)
    fields: dict[str, Any] = {
        "timestamp": time.time_ns(),
        "context": trace.set_span_in_context(span),
        "severity_number": severity,
        "severity_text": severity.name,
        "body": f"{exc_type}: {message}"[:MAX_BODY],
        "attributes": attributes,
        "event_name": EVENT_NAME,
    }
    if record_stack and _takes_exception(type(target)):
        fields["exception"] = exc  # not for stackless kinds: the SDK would add the stack
    target.emit(**fields)


def record_exception(span: Span, exc: BaseException, error_id: str, kind: ErrorKind) -> bool:
    """What recording does where it adds the ``exception`` span event: emit the log record if
    the opt-in asks for logs. Returns True if the span event should still be added."""
    wanted = signal()
    if wanted.logs:
        try:
            emit(span, exc, error_id, kind)
        except Exception:  # a broken logs pipeline must not replace the app's own error
            _log.debug("tracectx: could not emit the exception log record", exc_info=True)
    return wanted.events
