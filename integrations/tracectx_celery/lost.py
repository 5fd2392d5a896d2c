"""Work that never ran to completion still leaves a span in its trace.

Unknown and rejected messages, revoked tasks, and failures the pool's parent process reports
for a child it lost (hard time limit, ``WorkerLostError`` after SIGKILL) have no run span:
each gets a short span of its own, parented on the context the message carried. The parent
process learns that context when the task is received.
"""

from __future__ import annotations

import collections
import threading
from typing import Any

from opentelemetry import propagate
from opentelemetry.trace import SpanKind, Status, StatusCode

from tracectx import record_error
from tracectx import semconv as sc
from tracectx_celery import carrier, tracing
from tracectx_celery.unwrap import real_exception

__all__ = [
    "on_lost_failure",
    "on_received",
    "on_rejected",
    "on_revoked",
    "on_unknown",
]

MAX_REMEMBERED = 8192
_lock = threading.Lock()
_received: collections.OrderedDict[str, Any] = collections.OrderedDict()
_kept: tuple[object, tuple[str, ...]] | None = None


def _message_headers(message: Any) -> dict[str, Any]:
    headers = getattr(message, "headers", None)
    return dict(headers) if isinstance(headers, dict) else {}


def _lost_span(
    name: str, source: Any, exc: BaseException | None, reason: str, **attrs: Any
) -> None:
    parent = carrier.context_from(source)
    span = tracing.tracer().start_span(
        name,
        context=parent,
        kind=SpanKind.CONSUMER,
        attributes={
            "messaging.system": "celery",
            "messaging.operation.type": "process",
            "messaging.operation.name": "process",
            sc.ATTR_CELERY_LOST: reason,
            **attrs,
        },
    )
    if exc is not None:
        record_error(exc, span)
    else:
        span.set_status(Status(StatusCode.ERROR, reason))
    span.end()


def _kept_keys() -> tuple[str, ...]:
    """The global propagator's fields and ``task``; a composite propagator builds its
    ``fields`` set anew on each read, so they are kept per propagator (by identity)."""
    global _kept
    textmap = propagate.get_global_textmap()
    kept = _kept
    if kept is None or kept[0] is not textmap:
        kept = _kept = (textmap, (*textmap.fields, "task"))
    return kept[1]


def on_received(request: Any = None, **_: Any) -> None:
    """``task_received`` (pool parent): remember what a lost-work span needs, by task id: the
    propagation fields and the task name (not the whole message)."""
    task_id = getattr(request, "id", None)
    if not isinstance(task_id, str):
        return
    headers = getattr(request, "request_dict", None)
    if not isinstance(headers, dict):
        headers = {}
    kept = {k: headers[k] for k in _kept_keys() if k in headers}
    with _lock:
        _received[task_id] = kept
        while len(_received) > MAX_REMEMBERED:
            _received.popitem(last=False)


def on_lost_failure(sender: Any = None, task_id: str | None = None, exception: Any = None) -> None:
    """A failure reported with no run span here: time limit or lost worker."""
    with _lock:
        headers = _received.pop(task_id or "", None)
    if headers is None or not isinstance(exception, BaseException):
        return
    name = getattr(sender, "name", None) or headers.get("task") or "task"
    _lost_span(
        f"run {name}",
        headers,
        real_exception(exception),
        "failed outside the task",
        **{"messaging.message.id": task_id or ""},
    )


def on_unknown(
    message: Any = None, exc: Any = None, name: Any = None, id: Any = None, **_: Any
) -> None:
    """``task_unknown``: a message for a task this worker does not know."""
    err = exc if isinstance(exc, BaseException) else None
    _lost_span(
        f"unknown {name}",
        _message_headers(message),
        err,
        "unknown task",
        **{"messaging.message.id": str(id), sc.ATTR_CELERY_TASK_NAME: str(name)},
    )


def on_rejected(message: Any = None, exc: Any = None, **_: Any) -> None:
    """``task_rejected``: a message the worker could not accept."""
    headers = _message_headers(message)
    err = exc if isinstance(exc, BaseException) else None
    _lost_span(
        f"rejected {headers.get('task', 'message')}",
        headers,
        err,
        "rejected",
        **{"messaging.message.id": str(headers.get("id", ""))},
    )


def on_revoked(
    sender: Any = None,
    request: Any = None,
    terminated: Any = None,
    signum: Any = None,
    expired: Any = None,
    **_: Any,
) -> None:
    """``task_revoked``: the task was revoked (before or while running) or expired."""
    name = getattr(sender, "name", None) or "task"
    task_id = getattr(request, "id", None)
    with _lock:
        headers = _received.pop(task_id, None) if isinstance(task_id, str) else None
    reason = "expired" if expired else "terminated" if terminated else "revoked"
    _lost_span(
        f"revoked {name}",
        headers if headers is not None else request,
        None,
        reason,
        **{"messaging.message.id": str(task_id), sc.ATTR_CELERY_REVOKED_SIGNUM: str(signum)},
    )
