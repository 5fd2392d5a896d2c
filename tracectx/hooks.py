"""`instrument()` / `uninstrument()`: context propagation for threads and pools you don't own.

Patches, undoably — with `tracectx.patching.Patches`, so each patched attribute keeps the
original's name, docs and ``__wrapped__`` (a wrapt wrapper; ``ThreadPoolExecutor.submit``, the
per-hop one, a plain function: `Patches.replace`), and ``uninstrument()`` puts back exactly
what was there: ``Thread.start`` (capture the starter's context; pool worker
threads get an *empty* one), ``Thread._bootstrap_inner`` (run in it — subclasses overriding
``run()`` included; composes with `ContextThread`, which does the same itself),
``ThreadPoolExecutor.submit`` (each item in a fresh copy of the submitter's context, so
``loop.run_in_executor`` and ``executor.map`` are covered), ``ProcessPoolExecutor.submit``
(carrier to the child, workers forked in an empty context) and asyncio's conversion of a
worker's ``TimeoutError`` into a fresh one (see `tracectx.aio.keep_worker_errors`). Installs a
``threading.excepthook`` that records and logs errors of fire-and-forget threads, chained to any
hook installed before.

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

from opentelemetry.trace import Tracer, TracerProvider

from tracectx.aio import keep_worker_errors
from tracectx.checked import CheckedInstrumentor
from tracectx.executors import (
    is_bound,
    run_thread_in_context,
    start_in_context,
    submit_in_context,
    submit_to_processes,
)
from tracectx.patching import Patches
from tracectx.recording import record_failure
from tracectx.tracing import tracer as tracer_of
from tracectx.unobserved import report_unobserved

__all__ = ["TracectxInstrumentor", "excepthook", "instrument", "is_instrumented", "uninstrument"]

_lock = threading.Lock()
_patches = Patches()
_previous_excepthook: Callable[[threading.ExceptHookArgs], Any] | None = None
_failure_tracer: Tracer | None = None  # the instrumentor's tracer_provider's (None: global)
_Args = tuple[Any, ...]
_Kwargs = dict[str, Any]


def excepthook(args: threading.ExceptHookArgs) -> None:
    """Record an uncaught thread error in the starter's trace, log it once, then chain."""
    exc = args.exc_value
    if isinstance(exc, Exception):
        name = args.thread.name if args.thread is not None else "thread"
        record_failure(exc, f"thread {name}", tracer=_failure_tracer)
        report_unobserved(exc, f"thread {name}")
        previous = _previous_excepthook
        if previous is not None and previous is not threading.__excepthook__:
            previous(args)
        return
    (_previous_excepthook or threading.__excepthook__)(args)


def _start(
    wrapped: Callable[..., None], thread: threading.Thread, args: _Args, kw: _Kwargs
) -> None:
    if getattr(thread, "_target", None) is futures_thread._worker:
        ctx = contextvars.Context()  # pool workers: never the first submitter's context
    else:
        ctx = contextvars.copy_context()
    start_in_context(thread, ctx, lambda: wrapped(*args, **kw), _failure_tracer)


def _bootstrap(
    wrapped: Callable[[], None], thread: threading.Thread, args: _Args, kw: _Kwargs
) -> None:
    run_thread_in_context(thread, wrapped)


def _thread_submit(original: Callable[..., Future[Any]]) -> Callable[..., Future[Any]]:
    """The patched ``ThreadPoolExecutor.submit``: a plain function (`Patches.replace`), so a
    hop costs what `ContextThreadPoolExecutor`'s does."""

    def submit(pool: Any, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        if is_bound(fn):  # already carried (a ContextThreadPoolExecutor's work)
            return original(pool, fn, *args, **kwargs)
        return submit_in_context(original, pool, fn, args, kwargs)

    return submit


def _process_submit(
    wrapped: Callable[..., Future[Any]], pool: Any, args: _Args, kw: _Kwargs
) -> Any:
    if not args or getattr(args[0], "__module__", "") == "tracectx.executors":
        return wrapped(*args, **kw)  # already carried by a tracectx wrapper
    return submit_to_processes(wrapped, args[0], args[1:], kw)


def _convert_future_exc(wrapped: Callable[..., Any], _: Any, args: _Args, kw: _Kwargs) -> Any:
    return keep_worker_errors(wrapped)(*args, **kw)  # only ever called with an exception


def instrument(tracer_provider: TracerProvider | None = None) -> None:
    """Install the patches and the thread excepthook. Idempotent. A crashed thread's failure
    span is made by `tracer_provider`'s tracer (default: the global provider's)."""
    global _previous_excepthook, _failure_tracer
    with _lock:
        if _patches:
            return
        _failure_tracer = None if tracer_provider is None else tracer_of(tracer_provider)
        _patches.wrap(threading.Thread, "start", _start)
        _patches.wrap(threading.Thread, "_bootstrap_inner", _bootstrap)
        _patches.replace(ThreadPoolExecutor, "submit", _thread_submit)
        _patches.wrap(ProcessPoolExecutor, "submit", _process_submit)
        if "_convert_future_exc" in vars(asyncio.futures):
            _patches.wrap(asyncio.futures, "_convert_future_exc", _convert_future_exc)
        _previous_excepthook = threading.excepthook
        threading.excepthook = excepthook


def uninstrument() -> None:
    """Undo `instrument()`: what was there before each patch, and the previous excepthook,
    come back exactly."""
    global _previous_excepthook, _failure_tracer
    with _lock:
        _patches.undo()
        _failure_tracer = None
        if threading.excepthook is excepthook and _previous_excepthook is not None:
            threading.excepthook = _previous_excepthook
        _previous_excepthook = None


def is_instrumented() -> bool:
    return bool(_patches)


class TracectxInstrumentor(CheckedInstrumentor):
    """OTel instrumentor form of `instrument()`, for ``opentelemetry-instrument``; its one
    option is ``tracer_provider`` (any other is a `TypeError`, on every call)."""

    OPTIONS = frozenset({"tracer_provider"})

    def instrumentation_dependencies(self) -> Collection[str]:
        return []

    def _instrument(self, **kwargs: Any) -> None:
        instrument(kwargs.get("tracer_provider"))

    def _uninstrument(self, **kwargs: Any) -> None:
        uninstrument()
