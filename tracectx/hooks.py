"""`instrument()` / `uninstrument()`: context propagation for threads and pools you don't own.

Patches, undoably: ``Thread.start`` (capture the starter's context; pool worker threads get an
*empty* one), ``Thread._bootstrap_inner`` (run in it — subclasses overriding ``run()`` included;
composes with `ContextThread`, which does the same itself), ``ThreadPoolExecutor.submit`` (each
item in a fresh copy of the submitter's context, so ``loop.run_in_executor`` and
``executor.map`` are covered), ``ProcessPoolExecutor.submit`` (carrier to the child, workers
forked in an empty context) and asyncio's conversion of a worker's ``TimeoutError`` into a
fresh one (see `tracectx.aio.keep_worker_errors`). Installs a ``threading.excepthook`` that
records and logs errors of fire-and-forget threads, chained to any hook installed before.

Registered as the ``tracectx_threading`` ``opentelemetry_instrumentor`` entry point, so
``opentelemetry-instrument`` finds it.
"""

from __future__ import annotations

import asyncio.futures
import contextvars
import threading
from collections.abc import Callable, Collection
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures import thread as futures_thread
from typing import Any

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]

from tracectx.aio import keep_worker_errors
from tracectx.executors import (
    adopt_future,
    bind_context,
    run_thread_in_context,
    start_in_context,
    submit_to_processes,
)
from tracectx.recording import record_failure
from tracectx.unobserved import report_unobserved

__all__ = ["TracectxInstrumentor", "excepthook", "instrument", "is_instrumented", "uninstrument"]

_lock = threading.Lock()
_originals: list[tuple[Any, str, Any]] = []
_previous_excepthook: Callable[[threading.ExceptHookArgs], Any] | None = None


def excepthook(args: threading.ExceptHookArgs) -> None:
    """Record an uncaught thread error in the starter's trace, log it once, then chain."""
    exc = args.exc_value
    if isinstance(exc, Exception):
        name = args.thread.name if args.thread is not None else "thread"
        record_failure(exc, f"thread {name}")
        report_unobserved(exc, f"thread {name}")
        previous = _previous_excepthook
        if previous is not None and previous is not threading.__excepthook__:
            previous(args)
        return
    (_previous_excepthook or threading.__excepthook__)(args)


def _patch(owner: Any, name: str, make: Callable[[Any], Any]) -> None:
    original = owner.__dict__[name]
    _originals.append((owner, name, original))
    setattr(owner, name, make(original))


def _start(original: Callable[[threading.Thread], None]) -> Callable[[threading.Thread], None]:
    def start(self: threading.Thread) -> None:
        if getattr(self, "_target", None) is futures_thread._worker:
            ctx = contextvars.Context()  # pool workers: never the first submitter's context
        else:
            ctx = contextvars.copy_context()
        start_in_context(self, ctx, lambda: original(self))

    return start


def _bootstrap(original: Callable[[threading.Thread], None]) -> Callable[[threading.Thread], None]:
    def bootstrap_inner(self: threading.Thread) -> None:
        run_thread_in_context(self, lambda: original(self))

    return bootstrap_inner


def _thread_submit(original: Callable[..., Future[Any]]) -> Callable[..., Future[Any]]:
    def submit(self: Any, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        return adopt_future(original(self, bind_context(fn), *args, **kwargs))

    return submit


def _process_submit(original: Callable[..., Future[Any]]) -> Callable[..., Future[Any]]:
    def submit(self: Any, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        if getattr(fn, "__module__", "") == "tracectx.executors":
            return original(self, fn, *args, **kwargs)  # already carried by a tracectx wrapper
        return submit_to_processes(lambda *call: original(self, *call), fn, args, kwargs)

    return submit


def instrument() -> None:
    """Install the patches and the thread excepthook. Idempotent."""
    global _previous_excepthook
    with _lock:
        if _originals:
            return
        _patch(threading.Thread, "start", _start)
        _patch(threading.Thread, "_bootstrap_inner", _bootstrap)
        _patch(ThreadPoolExecutor, "submit", _thread_submit)
        _patch(ProcessPoolExecutor, "submit", _process_submit)
        if "_convert_future_exc" in vars(asyncio.futures):
            _patch(asyncio.futures, "_convert_future_exc", keep_worker_errors)
        _previous_excepthook = threading.excepthook
        threading.excepthook = excepthook


def uninstrument() -> None:
    """Undo `instrument()`: original methods and the previous excepthook come back."""
    global _previous_excepthook
    with _lock:
        while _originals:
            owner, name, original = _originals.pop()
            setattr(owner, name, original)
        if threading.excepthook is excepthook and _previous_excepthook is not None:
            threading.excepthook = _previous_excepthook
        _previous_excepthook = None


def is_instrumented() -> bool:
    return bool(_originals)


class TracectxInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """OTel instrumentor form of `instrument()`, for ``opentelemetry-instrument``."""

    def instrumentation_dependencies(self) -> Collection[str]:
        return []

    def _instrument(self, **kwargs: Any) -> None:
        instrument()

    def _uninstrument(self, **kwargs: Any) -> None:
        uninstrument()
