"""Record errors on spans following the tracectx contract (see `tracectx.semconv`).

The first span an error is recorded on is its *origin*; every later span it leaves is a
*propagator* pointing back at the origin; a span that catches it and carries on is an
*absorber* (`handled`). `traced` opens a span and applies all of this; `record_error` does it on
any span, including ones opened by other instrumentations.
"""

from __future__ import annotations

import functools
import inspect
import warnings
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, ParamSpec, TypeVar, cast, overload

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from tracectx import exception_logs, semconv
from tracectx.classify import classify
from tracectx.config import settings
from tracectx.context import get_bound
from tracectx.errors import (
    ErrorOrigin,
    TracedError,
    cause_of,
    error_id,
    get_origin,
    group_leaves,
    set_origin,
    type_name,
)
from tracectx.kinds import ErrorKind, policy_for, run_fatal_hooks
from tracectx.redaction import redact
from tracectx.tracing import child_tracer
from tracectx.tracing import tracer as _tracer

__all__ = [
    "error_attributes",
    "handled",
    "mark_handled",
    "meta_attributes",
    "record_error",
    "record_failure",
    "traced",
]

P = ParamSpec("P")
R = TypeVar("R")
_SPANS_ATTR = "_tracectx_spans"
# A decorator whose wrapper must stay *outside* `traced` (`retry_transient`: one span per
# attempt) marks the wrapper with (a function that re-applies it to another callable, the
# function it wrapped).
OUTSIDE_TRACED_ATTR = "_tracectx_outside_traced"
_MAX_SPANS_REMEMBERED = 64
_attach, _detach = otel_context.attach, otel_context.detach
_set_span_in_context = trace.set_span_in_context


def _hex_ids(span: Span) -> tuple[str, str]:
    ctx = span.get_span_context()
    return format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")


_resource_service: tuple[object, str | None] = (None, None)


def _service(span: Span) -> str | None:
    """The span's ``service.name`` (a resource's attributes never change: the last resource's
    answer is kept), else the configured service name."""
    global _resource_service
    resource = getattr(span, "resource", None)
    seen, name = _resource_service
    if resource is not seen:
        found = getattr(resource, "attributes", {}).get("service.name") if resource else None
        name = str(found) if found else None
        _resource_service = (resource, name)
    return name or settings().service_name


def _attr_value(value: Any) -> str | bool | int | float:
    if isinstance(value, str | bool | int | float):
        return value
    return str(value)


MAX_META_ATTRIBUTES = 64


def meta_attributes(metadata: Mapping[str, Any]) -> dict[str, str | bool | int | float]:
    """``tracectx.error.meta.<key>`` attributes of `metadata`, redacted; nested mappings are
    flattened to dotted keys (``creds.user``), lists become their JSON-ish text."""
    out: dict[str, str | bool | int | float] = {}

    def walk(prefix: str, value: Any, depth: int) -> None:
        if len(out) >= MAX_META_ATTRIBUTES:
            return
        if isinstance(value, Mapping) and depth < 4:
            for k, v in value.items():
                walk(f"{prefix}.{k}", v, depth + 1)
        else:
            out[semconv.ATTR_META_PREFIX + prefix] = _attr_value(value)

    for key, value in redact(metadata).items():
        walk(str(key), value, 0)
    return out


def _metadata(exc: BaseException) -> Mapping[str, Any]:
    """An error's metadata: a `TracedError`'s own, else what was bound where it was born —
    remembered on the exception at its origin, since the context that bound it is gone by the
    time the error crosses a hop (a process pool, a Celery result)."""
    if isinstance(exc, TracedError):
        return exc.metadata
    found = getattr(exc, "metadata", None)
    if isinstance(found, Mapping):
        return found
    bound = get_bound()
    if bound:
        try:  # redacted: the exception object itself may be pickled across a hop
            exc.metadata = redact(bound)  # type: ignore[attr-defined]
        except (AttributeError, TypeError):  # __slots__ exceptions: nothing to remember on
            pass
    return bound


def error_attributes(
    exc: BaseException, kind: ErrorKind | None = None
) -> dict[str, str | bool | int | float]:
    """The identity attributes of an error: type, kind, code, id (no role). Pass `kind` when
    the caller has classified `exc` already."""
    kind = kind if kind is not None else classify(exc)
    code = exc.code if isinstance(exc, TracedError) else kind.name.lower()
    attrs: dict[str, str | bool | int | float] = {
        semconv.ATTR_ERROR_TYPE: type_name(exc),
        semconv.ATTR_KIND: kind.name,
        semconv.ATTR_CODE: code,
        semconv.ATTR_ID: error_id(exc),
    }
    cause = cause_of(exc)
    if cause is not None:
        attrs[semconv.ATTR_CAUSE_ID] = error_id(cause)
    if isinstance(exc, BaseExceptionGroup):
        ids = list(dict.fromkeys(error_id(m) for m in group_leaves(exc)))
        attrs[semconv.ATTR_MEMBER_IDS] = ",".join(ids)
    return attrs


def _seen_on(exc: BaseException, span_id: str) -> bool:
    """True if `exc` was already recorded on this span; remembers it otherwise."""
    spans = getattr(exc, _SPANS_ATTR, None)
    if not isinstance(spans, list):
        spans = []
        try:
            setattr(exc, _SPANS_ATTR, spans)
        except (AttributeError, TypeError):
            return False
    if span_id in spans:
        return True
    if len(spans) < _MAX_SPANS_REMEMBERED:
        spans.append(span_id)
    return False


def _exception_event(
    span: Span, exc: BaseException, eid: str, kind: ErrorKind, type_text: str, message: str
) -> None:
    """The OTel ``exception`` event, with the stack trace only if the kind's policy asks.

    No ``exception.escaped``: deprecated in the OTel semantic conventions (and the constant
    "False" this used to write was wrong for an error leaving its span). With
    ``OTEL_SEMCONV_EXCEPTION_SIGNAL_OPT_IN=logs`` an exception log record replaces the event
    (``logs/dup``: both); see `tracectx.exception_logs`."""
    if not exception_logs.record_exception(span, exc, eid, kind):
        return
    if policy_for(kind).record_stack:
        span.record_exception(exc, attributes={semconv.ATTR_ID: eid})
        return
    span.add_event(
        "exception",
        {
            "exception.type": type_text,
            "exception.message": message,
            semconv.ATTR_ID: eid,
        },
    )


def record_error(exc: BaseException, span: Span | None = None) -> str | None:
    """Record `exc` escaping `span` (default: current). Returns the role given, or None.

    Origin on the first span, propagated on later ones; recording twice on one span is a no-op.
    A FATAL error runs the FATAL hooks once, at its origin.
    """
    span = span if span is not None else trace.get_current_span()
    eid = error_id(exc)
    if not span.is_recording():  # sampled out: the id and metadata still ride on the error
        _metadata(exc)
        return None
    trace_hex, span_hex = _hex_ids(span)
    if _seen_on(exc, span_hex):
        return None
    kind = classify(exc)
    attrs = error_attributes(exc, kind)
    type_text, message = str(attrs[semconv.ATTR_ERROR_TYPE]), str(exc)
    origin = get_origin(exc)
    if origin is None or origin.span_id == span_hex:
        role = semconv.ROLE_ORIGIN
        if origin is None:
            set_origin(exc, ErrorOrigin(trace_hex, span_hex, _service(span)))
        metadata = _metadata(exc)
        if metadata:
            attrs.update(meta_attributes(metadata))
        _exception_event(span, exc, eid, kind, type_text, message)
    else:
        role = semconv.ROLE_PROPAGATED
        attrs[semconv.ATTR_ORIGIN_SPAN_ID] = origin.span_id
        if origin.trace_id != trace_hex:
            attrs[semconv.ATTR_ORIGIN_TRACE_ID] = origin.trace_id
    attrs[semconv.ATTR_ROLE] = role
    span.set_attributes(attrs)
    span.set_status(Status(StatusCode.ERROR, f"{type_text}: {message}"[:512]))
    if role == semconv.ROLE_ORIGIN and kind.is_a(ErrorKind.FATAL):
        run_fatal_hooks(exc, kind)
    return role


def mark_handled(exc: BaseException, span: Span | None = None) -> None:
    """Mark `exc` as caught and dealt with in `span` (default: current): the span absorbed it.

    Adds a ``tracectx.error.handled`` event with the error's id; the span's status is not set to
    ERROR. An error never recorded before is born here: its exception event is added too.
    """
    span = span if span is not None else trace.get_current_span()
    error_id(exc)
    if not span.is_recording():
        return
    trace_hex, span_hex = _hex_ids(span)
    kind = classify(exc)
    attrs = error_attributes(exc, kind)
    if get_origin(exc) is None:
        set_origin(exc, ErrorOrigin(trace_hex, span_hex, _service(span)))
        type_text = str(attrs[semconv.ATTR_ERROR_TYPE])
        _exception_event(span, exc, str(attrs[semconv.ATTR_ID]), kind, type_text, str(exc))
    span.add_event(semconv.EVENT_HANDLED, attributes=attrs)
    span.set_attribute(semconv.ATTR_ROLE, semconv.ROLE_ABSORBED)
    span.set_attribute(semconv.ATTR_ID, attrs[semconv.ATTR_ID])


class _Traced:
    """A span that records escaping errors; context manager and decorator (sync and async)."""

    def __init__(
        self,
        name: str | None,
        kind: SpanKind,
        attributes: Mapping[str, Any] | None,
        tracer: trace.Tracer | None,
    ) -> None:
        self.name = name
        self.kind = kind
        self.attributes = dict(attributes or {})
        self.tracer = tracer
        self._cms: list[Any] = []

    def _start(self, name: str) -> Span:
        # start_span + attach: what start_as_current_span does, without its two generator-based
        # context managers (and the exception handling we switch off anyway)
        tracer = child_tracer(self.tracer)
        if tracer is None:  # nobody would record the span: none is made, the parent stays
            self._cms.append((None, None))
            return trace.get_current_span()
        span = tracer.start_span(name, kind=self.kind, attributes=self.attributes)
        self._cms.append((span, otel_context.attach(trace.set_span_in_context(span))))
        return span

    def __enter__(self) -> Span:
        return self._start(self.name or "traced")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        span, token = self._cms.pop()
        if span is None:  # sampled out
            if isinstance(exc, Exception):
                record_error(exc, trace.INVALID_SPAN)  # its id and metadata, no attributes
            return
        try:
            if isinstance(exc, Exception):  # CancelledError, KeyboardInterrupt: not errors
                record_error(exc, span)
        finally:
            otel_context.detach(token)
            span.end()

    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]:
        outside: tuple[Any, ...] = getattr(fn, OUTSIDE_TRACED_ATTR, ())
        # (re-apply, the function it wrapped): checked against __wrapped__, so a marker copied
        # onto someone else's wrapper by functools.wraps is ignored
        if len(outside) == 2 and getattr(fn, "__wrapped__", None) is outside[1]:
            reapply: Callable[[Callable[P, R]], Callable[P, R]] = outside[0]
            return reapply(self(cast("Callable[P, R]", outside[1])))
        name = self.name or fn.__qualname__
        # Per call only the span, its context and the call: no `_Traced` object, no copy of
        # the attributes (made once here; the SDK copies them only for a span it records).
        kind, fixed = self.kind, self.tracer
        attributes = dict(self.attributes) or None

        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                tracer = child_tracer(fixed)
                if tracer is None:  # nobody would record the span: none is made
                    try:
                        return await fn(*args, **kwargs)
                    except Exception as exc:
                        record_error(exc, trace.INVALID_SPAN)  # its id and metadata
                        raise
                span = tracer.start_span(name, kind=kind, attributes=attributes)
                token = _attach(_set_span_in_context(span))
                try:
                    return await fn(*args, **kwargs)
                except Exception as exc:
                    record_error(exc, span)
                    raise
                finally:
                    _detach(token)
                    span.end()

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            tracer = child_tracer(fixed)
            if tracer is None:  # nobody would record the span: none is made
                try:
                    return fn(*args, **kwargs)
                except Exception as exc:
                    record_error(exc, trace.INVALID_SPAN)  # its id and metadata
                    raise
            span = tracer.start_span(name, kind=kind, attributes=attributes)
            token = _attach(_set_span_in_context(span))
            try:
                return fn(*args, **kwargs)
            except Exception as exc:
                record_error(exc, span)
                raise
            finally:
                _detach(token)
                span.end()

        return wrapper


@overload
def traced(name: Callable[P, R], /) -> Callable[P, R]: ...
@overload
def traced(
    name: str | None = None,
    /,
    *,
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: Mapping[str, Any] | None = None,
    tracer: trace.Tracer | None = None,
) -> _Traced: ...
def traced(
    name: str | Callable[..., Any] | None = None,
    /,
    *,
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: Mapping[str, Any] | None = None,
    tracer: trace.Tracer | None = None,
) -> Any:
    """Open a span that records escaping errors by the contract.

    ``with traced("charge"):``, ``@traced`` and ``@traced("charge")`` all work, on sync and
    async functions. Errors are re-raised unchanged. Over ``@retry_transient`` it goes inside
    the retry, so either order gives one span per attempt.
    """
    if callable(name):
        return _Traced(None, kind, attributes, tracer)(name)
    return _Traced(name, kind, attributes, tracer)


def record_failure(
    exc: BaseException,
    name: str,
    *,
    start_time: int | None = None,
    context: Any = None,
    attributes: Mapping[str, Any] | None = None,
    tracer: trace.Tracer | None = None,
) -> str | None:
    """Give an error that escaped work with no span of its own a span in the starter's trace.

    Used by the executor and task wrappers on their failure path only, so success costs no
    span. A span named `name`, child of `context` (default: current), starting at `start_time`
    (ns), records `exc` by the contract and ends at once (made by `tracer`; default: the global
    provider's ``tracectx`` tracer). Returns the role given, or None when the error already has
    an origin (a span inside the work recorded it).
    """
    if get_origin(exc) is not None or not isinstance(exc, Exception):
        return None
    if tracer is None:
        tracer = _tracer()
    span = tracer.start_span(name, context=context, start_time=start_time, attributes=attributes)
    try:
        return record_error(exc, span)
    finally:
        span.end()


def handled(exc: BaseException, span: Span | None = None) -> None:
    """Deprecated spelling of `mark_handled` (it read like a question); kept for 0.x."""
    warnings.warn(
        "tracectx.handled() is now tracectx.mark_handled()", DeprecationWarning, stacklevel=2
    )
    mark_handled(exc, span)
