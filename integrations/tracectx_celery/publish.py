"""The publishing side: a PRODUCER span per ``apply_async``/``delay``/``send_task``.

A message beat publishes for a schedule entry also carries the entry's name and next due time
(see `tracectx_celery.schedule`); a publish that fails is ended with its error (`abandon`).

The global propagator writes the span's context (and baggage, so bound metadata) into the
message headers, replacing any propagation fields copied from an earlier message. A retry
published by the running task carries the *original* publisher's context plus a link to the
failed attempt, so attempts are siblings; a chord callback carries links to its header tasks.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import MutableMapping
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind

from tracectx import record_error
from tracectx import semconv as sc
from tracectx.propagation import capture, inject
from tracectx_celery import carrier, schedule, tracing
from tracectx_celery.run import Run, chord_header_links, current_run

__all__ = ["abandon", "on_after_publish", "on_before_publish"]

MAX_IN_FLIGHT = 4096
_lock = threading.Lock()
_publishing: collections.OrderedDict[str, Span] = collections.OrderedDict()


def _is_chord_callback(run: Run, task_id: str) -> bool:
    chord = getattr(run.task.request, "chord", None)
    options = chord.get("options") if isinstance(chord, MutableMapping) else None
    return isinstance(options, MutableMapping) and options.get("task_id") == task_id


def on_before_publish(
    sender: Any = None,
    headers: MutableMapping[str, Any] | None = None,
    routing_key: str | None = None,
    **_: Any,
) -> None:
    """``before_task_publish``: open the publish span and write the context into `headers`."""
    if headers is None:
        return
    task_id = headers.get("id")
    task_name = str(headers.get("task") or sender)
    run = current_run()
    if run is not None and task_id == run.task_id:  # the running task retrying itself
        headers.update(capture(run.publisher))
        previous = capture(trace.set_span_in_context(run.span)).get("traceparent")
        if previous:
            headers[carrier.PREVIOUS_ATTEMPT_HEADER] = previous
        return
    attrs: dict[str, Any] = {
        "messaging.system": "celery",
        "messaging.operation.type": "send",
        # the span is "{messaging.operation.name} {task}", as the conventions name spans
        "messaging.operation.name": "send",
        sc.ATTR_CELERY_TASK_NAME: task_name,
    }
    if isinstance(task_id, str):
        attrs["messaging.message.id"] = task_id
    if routing_key:
        attrs["messaging.destination.name"] = routing_key
    dispatch = schedule.current()
    if dispatch is not None:
        attrs[schedule.ATTR_ENTRY] = dispatch.entry
    span = tracing.tracer().start_span(
        f"send {task_name}", kind=SpanKind.PRODUCER, attributes=attrs
    )
    for stale in (
        carrier.PREVIOUS_ATTEMPT_HEADER,
        carrier.LINKS_HEADER,
        schedule.ENTRY_HEADER,
        schedule.DUE_HEADER,
    ):
        headers.pop(stale, None)
    if dispatch is not None:
        headers[schedule.ENTRY_HEADER] = dispatch.entry
        if dispatch.next_due is not None:
            headers[schedule.DUE_HEADER] = repr(dispatch.next_due)
        if isinstance(task_id, str):
            dispatch.task_ids.append(task_id)
    inject(headers, context=trace.set_span_in_context(span))
    if run is not None and isinstance(task_id, str) and _is_chord_callback(run, task_id):
        headers[carrier.LINKS_HEADER] = chord_header_links(run)
    if not isinstance(task_id, str):
        span.end()
        return
    with _lock:
        _publishing[task_id] = span
        while len(_publishing) > MAX_IN_FLIGHT:  # publishes that failed never reach "after"
            _publishing.popitem(last=False)[1].end()


def on_after_publish(headers: MutableMapping[str, Any] | None = None, **_: Any) -> None:
    """``after_task_publish``: end the publish span."""
    task_id = headers.get("id") if headers else None
    with _lock:
        span = _publishing.pop(task_id, None) if isinstance(task_id, str) else None
    if span is not None:
        span.end()


def abandon(task_id: str, exc: BaseException) -> None:
    """End the publish span of `task_id` with `exc`: the publish failed, so no
    ``after_task_publish`` will end it."""
    with _lock:
        span = _publishing.pop(task_id, None)
    if span is not None:
        record_error(exc, span)
        span.end()
