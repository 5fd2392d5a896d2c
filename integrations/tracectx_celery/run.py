"""The worker side: one CONSUMER span per task run, current while the task runs.

The span is the publish span's child (or links to it, see `Options.link_to_publisher`). Each
retry attempt is its own span, a sibling under the original publisher, with the attempt number
and a link to the previous attempt. A chord callback links to every header task it waited for
(through the result backend, when it is a key-value store such as Redis).

A run beat dispatched carries its schedule entry's name (``celery.beat.entry.name``); its first
attempt records, in a key-value result backend, that it started (beat reports a run that never
did, see `tracectx_celery.beat`), and gets a ``celery.beat.late`` event if it starts after the
entry was next due.

A worker runs task after task in one context, so whatever a task leaves there would reach the
next: after the task the context is the one from before it — the OTel context (span, bound
metadata, even after a plain ``bind()`` in the task) and the structlog context variables (keys
the task bound are unbound, values it changed are put back).
"""

from __future__ import annotations

import contextvars
import dataclasses
import time
from collections.abc import Mapping
from typing import Any

import structlog
from opentelemetry import baggage, trace
from opentelemetry import context as otel_context
from opentelemetry.context import Context
from opentelemetry.trace import Link, Span, SpanKind

from tracectx import error_id, record_error
from tracectx import semconv as sc
from tracectx.propagation import capture, extract
from tracectx.recording import error_attributes
from tracectx_celery import carrier, options, schedule, tracing
from tracectx_celery.unwrap import real_exception

__all__ = ["Run", "current_run", "on_failure", "on_postrun", "on_prerun", "on_retry"]

EVENT_EXPECTED = sc.EVENT_EXPECTED
_STRUCTLOG_PREFIX = structlog.contextvars.STRUCTLOG_KEY_PREFIX
MAX_LINKS = 128
_runs: dict[str, Run] = {}
_current: contextvars.ContextVar[Run | None] = contextvars.ContextVar(
    "tracectx_celery_run", default=None
)


@dataclasses.dataclass(slots=True)
class Run:
    """One running task: its span, what to restore afterwards, the publisher's context (a
    retry is published with it, so attempts are siblings)."""

    task_id: str
    task: Any
    span: Span
    publisher: Context
    token: object
    log_before: contextvars.Context  # the context before the run: its structlog values
    run_token: contextvars.Token[Run | None] | None = None
    expected: set[str] = dataclasses.field(default_factory=set)


def current_run() -> Run | None:
    """The task running in this context, if any."""
    return _current.get()


def _span_context_of(traceparent: Any) -> trace.SpanContext | None:
    if not isinstance(traceparent, str):
        return None
    sc_ = trace.get_current_span(extract({"traceparent": traceparent})).get_span_context()
    return sc_ if sc_.is_valid else None


def _links(request: Any, publisher: Context) -> list[Link]:
    links = []
    previous = _span_context_of(carrier.read(request, carrier.PREVIOUS_ATTEMPT_HEADER))
    if previous is not None:
        links.append(Link(previous, {sc.ATTR_LINK: sc.LINK_PREVIOUS_ATTEMPT}))
    headers = carrier.read(request, carrier.LINKS_HEADER)
    for value in headers if isinstance(headers, list) else []:
        linked = _span_context_of(value)
        if linked is not None and len(links) < MAX_LINKS:
            links.append(Link(linked, {sc.ATTR_LINK: sc.LINK_CHORD_HEADER}))
    if options.current().link_to_publisher:
        publisher_sc = trace.get_current_span(publisher).get_span_context()
        if publisher_sc.is_valid:
            links.append(Link(publisher_sc, {sc.ATTR_LINK: sc.LINK_PUBLISHER}))
    return links


def _attributes(task: Any, request: Any, task_id: str) -> dict[str, Any]:
    attrs: dict[str, Any] = {
        "messaging.system": "celery",
        "messaging.operation.type": "process",
        # the span is "{messaging.operation.name} {task}": Celery's word for it (task_prerun)
        "messaging.operation.name": "run",
        "messaging.message.id": task_id,
        sc.ATTR_CELERY_TASK_NAME: task.name,
        sc.ATTR_ATTEMPT: int(getattr(request, "retries", 0) or 0) + 1,
    }
    delivery = getattr(request, "delivery_info", None)
    if isinstance(delivery, Mapping) and isinstance(delivery.get("routing_key"), str):
        attrs["messaging.destination.name"] = delivery["routing_key"]
    elif getattr(request, "is_eager", False):
        queue = _eager_queue(task)
        if queue is not None:
            attrs["messaging.destination.name"] = queue
    entry = carrier.read(request, schedule.ENTRY_HEADER)
    if isinstance(entry, str):
        attrs[schedule.ATTR_ENTRY] = entry[: schedule.MAX_ENTRY_NAME]
    return attrs


def _eager_queue(task: Any) -> str | None:
    """The queue an eager run's task would have been sent to (the app's routes), as the
    destination a worker's run would report; None if the router cannot say."""
    try:
        queue = task.app.amqp.router.route({}, task.name)["queue"]
    except Exception:  # a broken route must not fail the task
        return None
    name = getattr(queue, "name", queue)
    return name if isinstance(name, str) and name else None


def _scheduled_start(task: Any, request: Any, task_id: str, span: Span) -> None:
    """First attempt of a beat-dispatched run: note the start for beat, and lateness."""
    if carrier.read(request, schedule.ENTRY_HEADER) is None:
        return
    if int(getattr(request, "retries", 0) or 0) > 0:  # a retry is not the scheduled start
        return
    due = carrier.read(request, schedule.DUE_HEADER)
    try:
        late = time.time() - float(due) if isinstance(due, str) else None
    except ValueError:
        late = None
    if late is not None and late > 0 and span.is_recording():
        span.set_attribute(schedule.ATTR_LATE_S, round(late, 3))
        span.add_event(schedule.EVENT_LATE, {schedule.ATTR_LATE_S: round(late, 3)})
    backend = task.backend
    if hasattr(backend, "mget"):  # a key-value store beat can read back
        try:
            backend.set(schedule.started_key(task_id), "1")
        except Exception:  # the result backend being down must not fail the task
            pass


def on_prerun(task_id: str | None = None, task: Any = None, **_: Any) -> None:
    """``task_prerun``: open the run span and make it current; bind task ids for logs."""
    if task is None or task_id is None:
        return
    request = task.request
    publisher = carrier.context_from(request)
    if options.current().link_to_publisher:
        parent = otel_context.get_current()
        for key, value in baggage.get_all(publisher).items():
            parent = baggage.set_baggage(key, value, parent)
    else:
        parent = publisher
    span = tracing.tracer().start_span(
        f"run {task.name}",
        context=parent,
        kind=SpanKind.CONSUMER,
        links=_links(request, publisher),
        attributes=_attributes(task, request, task_id),
    )
    log_before = contextvars.copy_context()  # O(1): an immutable snapshot
    token = otel_context.attach(trace.set_span_in_context(span, parent))
    run = Run(task_id, task, span, publisher, token, log_before)
    _runs[task_id] = run  # from here on, postrun undoes whatever follows
    run.run_token = _current.set(run)
    structlog.contextvars.bind_contextvars(task_id=task_id, task_name=task.name)
    _remember_chord_header(task, request, span)
    _scheduled_start(task, request, task_id, span)


def record_task_error(run: Run, exc: BaseException) -> None:
    """Record a task's failure on its run span; ``throws=`` errors are expected outcomes."""
    real = real_exception(exc)
    throws = getattr(run.task, "throws", ()) or ()
    if isinstance(real, tuple(throws)):
        eid = error_id(real)
        if eid not in run.expected and run.span.is_recording():
            run.expected.add(eid)
            run.span.add_event(EVENT_EXPECTED, attributes=error_attributes(real))
        return
    record_error(real, run.span)


def on_retry(sender: Any = None, request: Any = None, reason: Any = None, **_: Any) -> None:
    """``task_retry``: the failed attempt records its exception and a retry event."""
    run = _runs.get(getattr(request, "id", None) or "")
    if run is None:
        return
    exc = getattr(reason, "exc", None) or reason
    if isinstance(exc, BaseException):
        record_task_error(run, exc)
    when = getattr(reason, "when", None)
    attrs: dict[str, Any] = {sc.ATTR_ATTEMPT: int(getattr(request, "retries", 0) or 0) + 1}
    if when is not None:
        attrs[sc.ATTR_CELERY_RETRY_WHEN] = str(when)
    if run.span.is_recording():
        run.span.add_event(sc.EVENT_RETRY, attributes=attrs)


def on_failure(
    sender: Any = None, task_id: str | None = None, exception: Any = None, **_: Any
) -> bool:
    """``task_failure`` in the process that ran the task; False if no run span is open here
    (the pool's parent process reporting a hard time limit or a lost worker)."""
    run = _runs.get(task_id or "")
    if run is None or not isinstance(exception, BaseException):
        return False
    record_task_error(run, exception)
    return True


def on_postrun(task_id: str | None = None, state: str | None = None, **_: Any) -> None:
    """``task_postrun``: end the run span, restore context and log bindings."""
    run = _runs.pop(task_id or "", None)
    if run is None:
        return
    try:
        if state and run.span.is_recording():
            run.span.set_attribute(sc.ATTR_CELERY_STATE, state)
        run.span.end()
    finally:
        _restore(run)


def _restore(run: Run) -> None:
    """Put back the context from before `run`: each step even if another fails."""
    try:
        _restore_log_context(run.log_before)
    finally:
        try:
            if run.run_token is not None:
                _current.reset(run.run_token)
        except ValueError:
            pass
        finally:
            otel_context.detach(run.token)  # type: ignore[arg-type]


def _restore_log_context(before: contextvars.Context) -> None:
    """Put each structlog context variable back to its value in `before`: keys bound since
    are unbound (structlog's own unbound value, ``...``), values changed since put back.
    One pass over the current context; `before` is a snapshot, so nothing was copied out of it
    when the task started."""
    for var, value in contextvars.copy_context().items():
        if var.name.startswith(_STRUCTLOG_PREFIX):
            old = before.get(var, Ellipsis)
            if value is not old:
                var.set(old)


def _chord_key(group: str, index: int) -> str:
    return f"tracectx-chord-{group}-{index}"


def _remember_chord_header(task: Any, request: Any, span: Span) -> None:
    group, index = getattr(request, "group", None), getattr(request, "group_index", None)
    if not (getattr(request, "chord", None) and group and isinstance(index, int)):
        return
    backend = task.backend
    if not hasattr(backend, "mget"):
        return
    try:
        backend.set(
            _chord_key(group, index), capture(trace.set_span_in_context(span))["traceparent"]
        )
    except Exception:  # the result backend being down must not fail the task
        pass


def chord_header_links(run: Run) -> list[str]:
    """Traceparents of every header task of the chord `run` belongs to (itself included)."""
    request = run.task.request
    group, backend = getattr(request, "group", None), run.task.backend
    own = capture(trace.set_span_in_context(run.span)).get("traceparent")
    found: list[str] = []
    if group and hasattr(backend, "mget"):
        try:
            values = backend.mget([_chord_key(group, i) for i in range(MAX_LINKS)])
        except Exception:
            values = []
        for value in values or []:
            text = value.decode() if isinstance(value, bytes) else value
            if isinstance(text, str) and text not in found:
                found.append(text)
    if own and own not in found:
        found.append(own)
    return found[:MAX_LINKS]
