"""Retry TRANSIENT failures with exponential backoff and full jitter; never BUSINESS or FATAL.

Celery's ``autoretry_for`` matches exception types; this matches the error's *kind* (so a
`TracedError` of kind TRANSIENT or a retriable Kafka error qualifies and a declined payment does
not). Opt in per task with ``@app.task(retry_transient=True)`` or for every task with
``instrument(retry_transient=True)``; a task's ``max_retries`` bounds the attempts. The task's
``run`` is wrapped once, when the app is finalized (before the worker builds its tracers).
"""

from __future__ import annotations

import functools
import random
from typing import Any

from celery.exceptions import Retry

from tracectx.retry import is_retryable
from tracectx_celery import options

__all__ = ["backoff", "wrap_app", "wrap_task"]

_MARK = "_tracectx_autoretry"


def backoff(retries: int) -> float:
    """Seconds before attempt ``retries + 2``: full jitter over ``base * 2**retries``, capped."""
    opts = options.current()
    return random.uniform(0, min(opts.retry_backoff_max, opts.retry_backoff * 2**retries))


def wrap_task(task: Any) -> None:
    """Wrap `task.run` if the task (or the global option) asks for TRANSIENT retries."""
    enabled = getattr(task, "retry_transient", None)
    if enabled is None:
        enabled = options.current().retry_transient
    run = getattr(task, "run", None)
    if not enabled or run is None or getattr(run, _MARK, False):
        return

    @functools.wraps(run)
    def retrying(*args: Any, **kwargs: Any) -> Any:
        try:
            return run(*args, **kwargs)
        except Retry:
            raise
        except Exception as exc:
            retries = int(task.request.retries or 0)
            limit = task.max_retries
            if not is_retryable(exc) or (limit is not None and retries >= limit):
                raise
            raise task.retry(exc=exc, countdown=backoff(retries)) from exc

    setattr(retrying, _MARK, True)
    task.run = retrying


def wrap_app(app: Any) -> None:
    """Wrap every task of `app` now if finalized, else when it is (a worker finalizes its app
    at start; code that only runs eager tasks can call ``app.finalize()``)."""

    def wrap_all(*_: Any, **__: Any) -> None:
        for task in list(app.tasks.values()):
            wrap_task(task)

    if app.finalized:
        wrap_all()
    else:
        app.on_after_finalize.connect(wrap_all, weak=False)
