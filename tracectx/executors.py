"""Thread pools, threads and process pools that keep the submitter's context.

Threads: the submitter's whole `contextvars` context (OTel span and baggage, structlog
contextvars) is captured at ``submit``/``start`` and each piece of work runs in a fresh *copy*
of it, so nothing bound inside one task leaks into the next on the same worker thread, and pool
threads never keep the context of whichever request first started them.

Processes: contexts do not pickle, so the submitter's context travels as a W3C carrier plus
its bound metadata and structlog contextvars, and the child restores it in an empty context.
``submit`` itself runs in an empty context, so a worker forked by it — and the pool's
``initializer`` — starts with nothing of the request that happened to fork it. Workers flush
telemetry when they exit (fork and forkserver workers end with ``os._exit``: no atexit).

Failures: work that raises without a span of its own gets one on the failure path only
(`record_failure`), so success costs no span and no error goes unrecorded; the metadata bound
where it escaped rides with the exception (``metadata``), back to the caller or the parent.
Futures whose exception is never read, and errors escaping a thread's ``run()``, are logged
once with their trace id. Watching for an unread failure costs nothing on success: the future
is given the watching class only when its work has failed (see `TracedFuture`).
"""

from __future__ import annotations

import contextvars
import functools
import multiprocessing
import multiprocessing.util
import os
import pickle
import sys
import threading
import time
import types
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

from opentelemetry.trace import Tracer

from tracectx.context import bind, get_bound, local_bound
from tracectx.envelope import from_dict, to_dict
from tracectx.errors import TracedError
from tracectx.propagation import capture, restore
from tracectx.recording import record_failure
from tracectx.redaction import redact
from tracectx.shutdown import flush_providers
from tracectx.unobserved import report_unobserved

__all__ = [
    "ContextExecutor",
    "ContextProcessPoolExecutor",
    "ContextThread",
    "ContextThreadPoolExecutor",
    "TracedFuture",
    "bind_context",
    "adopt_future",
    "map_in_context",
    "prepare_thread",
    "process_call",
    "run_thread_in_context",
    "is_bound",
    "start_in_context",
    "submit_in_context",
    "submit_to_processes",
    "wrap_executor",
]

P = ParamSpec("P")
R = TypeVar("R")
_time_ns = time.time_ns


def _work_name(fn: Callable[..., Any]) -> str:
    return getattr(fn, "__qualname__", None) or type(fn).__name__


def _bind(fn: Callable[P, R]) -> Callable[P, R]:
    """`bind_context` without copying `fn`'s name and docs onto the wrapper (``functools.wraps``
    costs six times the closure): for wrappers only tracectx and the pool ever see."""
    captured = contextvars.copy_context()

    def bound_call(*args: P.args, **kwargs: P.kwargs) -> R:
        return captured.copy().run(_run_recorded, fn, args, kwargs)

    return bound_call


def bind_context(fn: Callable[P, R]) -> Callable[P, R]:
    """Bind `fn` to the current context: each call runs in a fresh copy of it.

    For callbacks handed to other libraries. Errors escaping `fn` are recorded in this trace
    (on a span of their own if nothing inside recorded them) and re-raised unchanged. The
    wrapper carries `fn`'s name, docs and ``__wrapped__``; binding twice is a no-op.
    """
    if is_bound(fn):
        return fn
    return functools.update_wrapper(_bind(fn), fn)


def is_bound(fn: object) -> bool:
    """True if `fn` is a tracectx wrapper that already runs in a captured context."""
    return fn is _run_work or getattr(fn, "__code__", None) in _BOUND_CODES


def _own_context(fn: Callable[..., Any]) -> contextvars.Context | None:
    """The context `fn` runs itself in when it is ``partial(ctx.run, ...)`` (how
    ``asyncio.to_thread`` hands work to the executor), else None."""
    if isinstance(fn, functools.partial):
        owner = getattr(fn.func, "__self__", None)
        if isinstance(owner, contextvars.Context):
            return owner
    return None


def _keep_metadata(exc: BaseException, ctx: contextvars.Context | None = None) -> None:
    """Give a plain exception the metadata bound in the context the work ran in (`ctx`, default
    the current one) as ``metadata`` — what `tracectx.envelope.to_dict` reads — so it survives
    the hop back to the caller. Bindings undone before it got here (a span or ``with bound()``
    around the raise) are not seen; the origin span has recorded them."""
    if isinstance(exc, TracedError) or isinstance(getattr(exc, "metadata", None), Mapping):
        return
    try:
        bound = ctx.run(get_bound) if ctx is not None else get_bound()
        exc.metadata = redact(bound)  # type: ignore[attr-defined]  # it may be pickled across
    except (AttributeError, TypeError, RuntimeError):  # __slots__; `ctx` entered elsewhere
        pass


def _record_escaped(
    exc: Exception, fn: Callable[..., Any], start: int, name: str | None = None
) -> None:
    """In the context the work ran in: keep its metadata on `exc`, give it a failure span."""
    _keep_metadata(exc, _own_context(fn))
    record_failure(exc, name or _work_name(fn), start_time=start)


def _run_recorded(fn: Callable[..., R], args: Any, kwargs: Any, name: str | None = None) -> R:
    start = _time_ns()
    try:
        return fn(*args, **kwargs)
    except Exception as exc:
        _record_escaped(exc, fn, start, name)
        raise


class _AddersContextCallbacks(list[Callable[[Future[Any]], object]]):
    """A future's ``_done_callbacks``: each callback appended runs in the adder's context.

    ``Future.add_done_callback`` appends to this list (or, once the future is done, calls the
    callback at once — in the adder's thread and so its context). Replacing the list is one
    attribute store; switching the future's class instead would turn its attributes into a
    real ``__dict__`` (3.11 materialises it on ``__class__`` assignment), slowing every later
    access — most of what a hop used to cost."""

    __slots__ = ()

    def append(self, fn: Callable[[Future[Any]], object]) -> None:
        super().append(_bind(fn))


def adopt_future(future: Future[Any]) -> Future[Any]:
    """Make a plain `Future`'s done-callbacks run in the context that added them. Returns the
    same object, still a plain ``Future``."""
    if type(future) is Future:
        future._done_callbacks = _AddersContextCallbacks()  # type: ignore[attr-defined]
    return future


class TracedFuture(Future[Any]):
    """A future whose work failed: logs its error once, with its trace id, if it is collected
    without anyone having read it.

    A future becomes one only on the failure path (`submit_in_context` switches its class
    before the error is set), so a successful hop costs no Python-level ``result()`` and no
    ``__del__``. A reader already blocked in ``result()`` or ``exception()`` when the work fails
    counts as having read it (see `_watch_unread`).
    """

    _tracectx_observed = False

    def exception(self, timeout: float | None = None) -> BaseException | None:
        self._tracectx_observed = True
        return super().exception(timeout)

    def _Future__get_result(self) -> Any:
        # Future.result's private helper, looked up after result() wakes: a reader blocked in
        # result() when the class was switched is seen too
        self._tracectx_observed = True
        return super()._Future__get_result()  # type: ignore[misc]

    def __del__(self) -> None:
        if self._tracectx_observed or self.cancelled() or not self.done():
            return
        exc = self._exception
        if exc is not None:
            report_unobserved(exc, f"future {self!r}")


def _watch_unread(future: Future[Any]) -> None:
    """Switch a failing future to `TracedFuture`, unless a reader is already waiting for it.

    Under the future's lock: a reader in ``result()``/``exception()`` has checked the state and
    is waiting on ``_condition`` (its ``_waiters``; ``concurrent.futures.wait`` uses other
    waiters); one that comes later finds the new class."""
    if type(future) is not Future:
        return
    condition = future._condition
    with condition:
        if not getattr(condition, "_waiters", None):
            future.__class__ = TracedFuture


def _submit_bound(submit: Callable[..., Future[Any]], fn: Callable[..., Any], *args: Any) -> Any:
    return submit(fn, *args)


# A submitted call's state: one list, so a hop allocates one object besides the pool's own.
_CTX, _FN, _ARGS, _KWARGS, _FUTURE, _FAILED = range(6)


def _run_work(state: list[Any]) -> Any:
    """What the pool runs: the call in its own copy of the submitter's context."""
    ctx, fn, args, kwargs, _, _ = state
    start = _time_ns()
    try:
        return ctx.run(fn, *args, **kwargs)
    except BaseException as exc:
        if isinstance(exc, Exception):
            ctx.run(_record_escaped, exc, fn, start)
        state[_FAILED] = True  # the submitter watches it if it has not published the future
        future = state[_FUTURE]
        if future is not None:
            _watch_unread(future)
        raise


def submit_in_context(
    submit: Callable[..., Future[Any]],
    owner: Any,
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Future[Any]:
    """``submit(owner, work, state)`` — a pool's ``submit`` and the pool (or `_submit_bound` and
    a bound ``submit``) — where the work runs ``fn(*args, **kwargs)`` in a copy of the current
    context and records an escaping error in this trace; on that failure path only, the future
    starts watching for nobody reading it (`TracedFuture`). Returns the adopted future."""
    state: list[Any] = [contextvars.copy_context(), fn, args, kwargs, None, False]
    done = submit(owner, _run_work, state)
    if type(done) is Future:  # `adopt_future`, inlined: this is the hop's hot path
        done._done_callbacks = _AddersContextCallbacks()  # type: ignore[attr-defined]
    state[_FUTURE] = done  # published once adopted: the worker never races the line above
    if state[_FAILED]:  # the work failed before the future was published
        _watch_unread(done)
    return done


class ContextThreadPoolExecutor(ThreadPoolExecutor):
    """A `ThreadPoolExecutor` whose work runs in the submitter's context.

    ``initializer`` runs in an empty context; done-callbacks in the context that added them.
    """

    def submit(self, fn: Callable[..., R], /, *args: Any, **kwargs: Any) -> Future[R]:
        return submit_in_context(ThreadPoolExecutor.submit, self, fn, args, kwargs)


_exit_flush_pid: int | None = None


def _flush_at_exit() -> None:
    """In a pool worker, once: flush telemetry when the worker exits. Fork and forkserver
    workers end with ``os._exit``, which skips atexit (and so the SDK's own flush), but runs
    multiprocessing's finalizers."""
    global _exit_flush_pid
    pid = os.getpid()
    if _exit_flush_pid == pid or multiprocessing.parent_process() is None:
        return
    _exit_flush_pid = pid
    multiprocessing.util.Finalize(None, flush_providers, exitpriority=100)


def _init_child(initializer: Callable[..., object] | None, *initargs: Any) -> None:
    """The pool's initializer, wrapped: in an empty context, with the exit flush set up."""
    _flush_at_exit()
    if initializer is not None:
        contextvars.Context().run(initializer, *initargs)


def _run_in_child(
    carrier: dict[str, str], local: dict[str, Any], fn: Callable[..., R], args: Any, kwargs: Any
) -> R:
    """Runs in the pool's child process: restore the submitter's context, then the work."""
    _flush_at_exit()
    return contextvars.Context().run(_restore_and_run, carrier, local, fn, args, kwargs)


def _restore_and_run(
    carrier: dict[str, str], local: dict[str, Any], fn: Callable[..., R], args: Any, kwargs: Any
) -> R:
    if local["log"]:  # imported only when there is something to bind (structlog pulls rich)
        import structlog.contextvars

        structlog.contextvars.bind_contextvars(**local["log"])
    # Bound metadata goes over the pool's own pipe, like the arguments: the child is this
    # application, so it gets all of it (the W3C carrier holds only what may leave).
    with restore(carrier), bind(**local["bound"]):
        try:
            return _run_recorded(fn, args, kwargs)
        except Exception as exc:
            try:
                pickle.dumps(exc)
            except Exception:
                # The pool would replace it with a pickling error: send its identity instead.
                raise from_dict(to_dict(exc)) from None
            raise


def _picklable_log_context() -> dict[str, Any]:
    log_vars = sys.modules.get("structlog.contextvars")  # never imported: nothing bound there
    if log_vars is None:
        return {}
    values: dict[str, Any] = log_vars.get_contextvars()
    try:
        pickle.dumps(values)
    except Exception:
        return {k: str(v) for k, v in values.items()}
    return values


def process_call(fn: Callable[..., Any], args: Any, kwargs: Any) -> tuple[Any, ...]:
    """What to submit to a process pool for ``fn(*args, **kwargs)`` in the current context."""
    local = {"log": _picklable_log_context(), "bound": dict(local_bound())}
    return (_run_in_child, capture(), local, fn, args, kwargs)


def submit_to_processes(
    submit: Callable[..., Future[Any]], fn: Callable[..., Any], args: Any, kwargs: Any
) -> Future[Any]:
    """Submit ``fn(*args, **kwargs)`` with a pool's `submit`: the call carries this context;
    `submit` runs in an empty one, so a worker it forks starts with nothing of this request."""
    call = process_call(fn, args, kwargs)
    return adopt_future(contextvars.Context().run(submit, *call))


class ContextProcessPoolExecutor(ProcessPoolExecutor):
    """A `ProcessPoolExecutor` whose work runs in the submitter's trace, under any start method.

    ``initializer`` runs in an empty context; workers flush telemetry when they exit.
    """

    def __init__(
        self,
        max_workers: int | None = None,
        mp_context: Any = None,
        initializer: Callable[..., object] | None = None,
        initargs: tuple[Any, ...] = (),
        **kwargs: Any,
    ) -> None:
        init = functools.partial(_init_child, initializer)
        super().__init__(max_workers, mp_context, init, initargs, **kwargs)

    def submit(self, fn: Callable[..., R], /, *args: Any, **kwargs: Any) -> Future[R]:
        return submit_to_processes(super().submit, fn, args, kwargs)


class ContextExecutor(Executor):
    """Wraps any executor so submitted work keeps the submitter's context (see `wrap_executor`)."""

    def __init__(self, inner: Executor) -> None:
        self.inner = inner
        self._processes = isinstance(inner, ProcessPoolExecutor)

    def submit(self, fn: Callable[..., R], /, *args: Any, **kwargs: Any) -> Future[R]:
        if self._processes:
            return submit_to_processes(self.inner.submit, fn, args, kwargs)
        return submit_in_context(_submit_bound, self.inner.submit, fn, args, kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self.inner.shutdown(wait=wait, cancel_futures=cancel_futures)


def wrap_executor(executor: Executor) -> Executor:
    """Any `Executor` (thread or process pool, or your own) as a context-keeping `Executor`."""
    if isinstance(executor, ContextThreadPoolExecutor | ContextProcessPoolExecutor):
        return executor
    return ContextExecutor(executor)


class ContextThread(threading.Thread):
    """A `Thread` that runs in the context of the code that called ``start()``.

    Holds for subclasses that override ``run()`` (the OTel threading instrumentation wraps
    ``run`` and so misses them); ``threading.Timer``-style subclasses too. An error escaping
    ``run()`` is recorded on the starter's trace and logged once with its trace id.
    """

    def start(self) -> None:
        start_in_context(self, contextvars.copy_context(), super().start)

    def _bootstrap_inner(self) -> None:
        run_thread_in_context(self, super()._bootstrap_inner)  # type: ignore[misc]


_CONTEXT_ATTR = "_tracectx_context"


def prepare_thread(
    thread: threading.Thread, ctx: contextvars.Context, tracer: Tracer | None = None
) -> None:
    """Make `thread` run in `ctx` and record what escapes its ``run()``, overridden or not
    (the failure span by `tracer`; default: the global provider's).

    A no-op if the thread is prepared already (a `ContextThread` under `hooks.instrument`).
    The wrapper removes itself when ``run()`` returns: a finished thread holds no cycle.
    """
    if isinstance(getattr(thread, _CONTEXT_ATTR, None), contextvars.Context):
        return
    setattr(thread, _CONTEXT_ATTR, ctx)
    run = thread.run
    name = f"thread {thread.name}"

    def recorded_run() -> None:
        start = time.time_ns()
        try:
            run()
        except Exception as exc:
            _keep_metadata(exc)
            record_failure(exc, name, start_time=start, tracer=tracer)
            report_unobserved(exc, name)
            if threading.excepthook is not threading.__excepthook__:
                raise  # the application's hook (or tracectx's) still sees it
            # the default hook would only print the traceback a second time
        finally:
            thread.__dict__.pop("run", None)

    thread.run = recorded_run  # type: ignore[method-assign]


def _forget(thread: threading.Thread) -> None:
    thread.__dict__.pop("run", None)
    thread.__dict__.pop(_CONTEXT_ATTR, None)


def start_in_context(
    thread: threading.Thread,
    ctx: contextvars.Context,
    start: Callable[[], None],
    tracer: Tracer | None = None,
) -> None:
    """`prepare_thread` then `start` (the original ``Thread.start``); undone if it fails."""
    fresh = not isinstance(getattr(thread, _CONTEXT_ATTR, None), contextvars.Context)
    prepare_thread(thread, ctx, tracer)
    try:
        start()
    except BaseException:
        if fresh:
            _forget(thread)
        raise


def run_thread_in_context(thread: threading.Thread, bootstrap: Callable[[], None]) -> None:
    """Run a thread's bootstrap inside the context `prepare_thread` gave it, if any.

    The context is taken off the thread first, so a second layer (a `ContextThread` under
    `hooks.instrument`) finds none and runs inside the first instead of entering it twice.
    """
    ctx = thread.__dict__.pop(_CONTEXT_ATTR, None)
    if isinstance(ctx, contextvars.Context):
        ctx.run(bootstrap)
    else:
        bootstrap()


def map_in_context(
    executor: Executor, fn: Callable[..., R], *iterables: Iterable[Any]
) -> Iterable[R]:
    """``executor.map`` for executors you can't wrap: every call keeps the caller's context."""
    return executor.map(_bind(fn), *iterables)


def _closure_code(outer: Callable[..., Any], name: str) -> types.CodeType:
    return next(
        c for c in outer.__code__.co_consts if isinstance(c, types.CodeType) and c.co_name == name
    )


_BOUND_CODES = frozenset({_closure_code(_bind, "bound_call")})
