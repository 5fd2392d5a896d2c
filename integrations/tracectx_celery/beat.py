"""Celery beat: every scheduled run is a trace of its own, and a run that is missed shows.

`patch_beat` wraps ``celery.beat.Scheduler.apply_async`` (what every dispatch of a due entry
goes through, in ``celery beat`` and in a worker's embedded ``-B`` beat). Each dispatch opens a
``schedule <entry>`` span in a fresh trace — never the beat process's context — with the entry's
name as ``celery.beat.entry.name`` and its next due time as ``celery.beat.next_due``; the
publish (``send <task>``) is its child and the run (``run <task>``) the publish's child, so the
whole scheduled run is one trace starting at beat, and every run of an entry is found by its
name. Then:

* a run whose task fails: the error on its run span, as for any task;
* a dispatch beat could not publish (broker down, arguments that do not serialize): the
  ``schedule <entry>`` span (and the publish span, if one was opened) end with the error;
* a run no worker started before the entry's next dispatch: at that dispatch, beat adds a
  ``missed <entry>`` span in the missed run's trace (child of its ``schedule`` span), with
  ``celery.lost`` = `schedule.MISSED_REASON` and the run's task id, status ERROR. Beat knows a
  run started from the mark an instrumented worker leaves in a key-value result backend
  (Redis, …); a run with a result state other than PENDING counts as started too (a worker
  without tracectx). Without a key-value result backend there is no such check;
* a run that starts after its entry was next due gets a ``celery.beat.late`` event.

A scheduler that overrides ``apply_async`` itself is not traced (one that overrides
``apply_entry`` or ``tick`` is).
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from typing import Any

from celery.beat import Scheduler
from celery.states import PENDING
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode

from tracectx import record_error
from tracectx import semconv as sc
from tracectx.patching import Patches
from tracectx_celery import publish, schedule, tracing

__all__ = ["MAX_ENTRIES", "patch_beat", "unpatch_beat"]

#: Entries whose last dispatch beat remembers (for the missed-run check).
MAX_ENTRIES = 4096
_log = logging.getLogger("tracectx")
_patches = Patches()
_lock = threading.Lock()
# entry name -> (task id, schedule span context) of its last dispatch
_last: collections.OrderedDict[str, tuple[str, SpanContext]] = collections.OrderedDict()


def _entry_arg(entry: Any = None, *_: Any, **__: Any) -> Any:
    return entry


def _next_due(entry: Any, now: float) -> float | None:
    """Epoch seconds at which `entry` is next due, if its schedule says."""
    try:
        _, seconds = entry.is_due()
        return now + float(seconds)
    except Exception:  # a schedule that cannot say: no lateness check
        return None


def _started(scheduler: Any, task_id: str) -> bool:
    """True unless the result backend shows `task_id` never started (or cannot tell)."""
    backend = getattr(getattr(scheduler, "app", None), "backend", None)
    if not hasattr(backend, "mget"):
        return True
    try:
        if backend.get(schedule.started_key(task_id)) is not None:  # type: ignore[union-attr]
            return True
        return bool(backend.get_state(task_id) != PENDING)  # type: ignore[union-attr]
    except Exception:
        _log.debug("tracectx: could not read the start mark of %s", task_id, exc_info=True)
        return True


def _check_previous(scheduler: Any, name: str, task_name: str) -> None:
    """The entry is due again: report its previous run if no worker started it."""
    with _lock:
        previous = _last.pop(name, None)
    if previous is None:
        return
    task_id, schedule_ctx = previous
    if _started(scheduler, task_id):
        return
    parent = trace.set_span_in_context(NonRecordingSpan(schedule_ctx), Context())
    span = tracing.tracer().start_span(
        f"missed {name}",
        context=parent,
        kind=SpanKind.INTERNAL,
        attributes={
            "messaging.system": "celery",
            "messaging.message.id": task_id,
            sc.ATTR_CELERY_TASK_NAME: task_name,
            sc.ATTR_CELERY_LOST: schedule.MISSED_REASON,
            schedule.ATTR_ENTRY: name,
        },
    )
    span.set_status(Status(StatusCode.ERROR, schedule.MISSED_REASON))
    span.end()


def _apply_async(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``Scheduler.apply_async``: one ``schedule <entry>`` span per dispatch, in a new trace."""
    entry = _entry_arg(*args, **kwargs)
    name = str(getattr(entry, "name", None) or getattr(entry, "task", None) or "entry")
    name = name[: schedule.MAX_ENTRY_NAME]
    task_name = str(getattr(entry, "task", "") or "")
    now = time.time()
    next_due = _next_due(entry, now)
    _check_previous(instance, name, task_name)
    attrs: dict[str, Any] = {
        "messaging.system": "celery",
        sc.ATTR_CELERY_TASK_NAME: task_name,
        schedule.ATTR_ENTRY: name,
    }
    if next_due is not None:
        attrs[schedule.ATTR_NEXT_DUE] = next_due
    span = tracing.tracer().start_span(
        f"schedule {name}", context=Context(), kind=SpanKind.INTERNAL, attributes=attrs
    )
    dispatch = schedule.Dispatch(name, next_due)
    token = otel_context.attach(trace.set_span_in_context(span, Context()))
    try:
        with schedule.dispatching(dispatch):
            result = wrapped(*args, **kwargs)
    except Exception as exc:
        for unsent in dispatch.task_ids:
            publish.abandon(unsent, exc)
        record_error(exc, span)
        raise
    else:
        sent = getattr(result, "id", None)
        if isinstance(sent, str):
            span.set_attribute("messaging.message.id", sent)
            with _lock:
                _last[name] = (sent, span.get_span_context())
                while len(_last) > MAX_ENTRIES:
                    _last.popitem(last=False)
        return result
    finally:
        otel_context.detach(token)
        span.end()


def patch_beat() -> None:
    """Trace beat's dispatches (idempotent); the wrapped method keeps its doc and
    ``__wrapped__``."""
    if _patches:
        return
    _patches.wrap(Scheduler, "apply_async", _apply_async)


def unpatch_beat() -> None:
    """Undo `patch_beat` and forget the dispatches remembered for the missed-run check."""
    _patches.undo()
    with _lock:
        _last.clear()
