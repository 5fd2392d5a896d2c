"""asyncio: tasks that keep (and, optionally, open) a span, and no task error left unseen.

asyncio already copies the context into a task; what it lacks is (1) a span per task that is the
*parent* of the coroutine's work — tracectx starts the span first and runs the task in a context
where it is current, so no wrapper coroutine is needed and ``task.get_coro()`` is the user's own
coroutine — and (2) recording of failures nobody awaits. Each task gets a done-callback that
reads the exception without retrieving it (asyncio's "never retrieved" check still works) and
records it in the creator's trace; `instrument_loop` adds a task factory for ``loop.create_task``
and an exception handler that logs unretrieved task errors once, with their trace id.

Executor hops: asyncio hands the awaiting coroutine a *fresh* ``TimeoutError`` in place of the
one the worker raised (``asyncio.futures._convert_future_exc``, a leftover from before 3.11,
when ``concurrent.futures.TimeoutError`` was its own class) — a new error id, no origin, no
metadata. `run_in_executor` gives the caller the worker's own exception; `keep_worker_errors`
(installed by `tracectx.hooks.instrument`) does it for ``loop.run_in_executor`` and
``asyncio.to_thread``.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import time
from collections.abc import Awaitable, Callable, Coroutine, Generator
from typing import Any, TypeVar

from opentelemetry import context as otel_context
from opentelemetry import trace

from tracectx.executors import bind_context
from tracectx.recording import record_error, record_failure
from tracectx.unobserved import report_unobserved

__all__ = [
    "TaskGroup",
    "create_task",
    "gather",
    "instrument_loop",
    "keep_worker_errors",
    "run_in_executor",
    "uninstrument_loop",
    "wait_for",
]

T = TypeVar("T")
_TRACER = "tracectx"
_in_helper = contextvars.ContextVar("tracectx_in_helper", default=False)
_CANCELLED_ATTR = "tracectx.task.cancelled"


def _task_name(task: asyncio.Future[Any], fallback: str = "task") -> str:
    get_name = getattr(task, "get_name", None)
    return str(get_name()) if get_name else fallback


def _pending_exception(task: asyncio.Future[Any]) -> BaseException | None:
    """The task's exception without marking it retrieved (``exception()`` would)."""
    if task.cancelled():
        return None
    exc = getattr(task, "_exception", None)
    return exc if isinstance(exc, BaseException) else None


def _watch(task: asyncio.Future[Any], start: int) -> None:
    task.add_done_callback(functools.partial(_on_done, start))  # runs in the creator's context


def _spanned_context(name: str, base: contextvars.Context) -> tuple[contextvars.Context, Any]:
    parent = base.run(otel_context.get_current)
    span = trace.get_tracer(_TRACER).start_span(name, context=parent)
    ctx = base.copy()
    ctx.run(otel_context.attach, trace.set_span_in_context(span, parent))
    return ctx, span


def _end_span_when_done(task: asyncio.Future[Any], span: trace.Span) -> None:
    def on_done(done: asyncio.Future[Any]) -> None:
        if done.cancelled():
            span.set_attribute(_CANCELLED_ATTR, True)
        else:
            exc = _pending_exception(done)
            if isinstance(exc, Exception):
                record_error(exc, span)
        span.end()

    task.add_done_callback(on_done)


def _spawn_guarded(
    spawn: Callable[[contextvars.Context | None], asyncio.Task[T]],
    context: contextvars.Context | None,
) -> asyncio.Task[T]:
    """Spawn with the flag that tells our task factory (if installed) not to watch twice."""
    token = _in_helper.set(True)
    try:
        return spawn(context)
    finally:
        _in_helper.reset(token)


def _on_done(start: int, task: asyncio.Future[Any]) -> None:
    exc = _pending_exception(task)
    if isinstance(exc, Exception):
        record_failure(exc, _task_name(task), start_time=start)


def _launch(
    spawn: Callable[[contextvars.Context | None], asyncio.Task[T]],
    coro: Any,
    name: str | None,
    span: bool | str,
    context: contextvars.Context | None,
    guarded: bool,
) -> asyncio.Task[T]:
    if not span:  # hot path: asyncio copies the context itself; one done-callback, no span
        start = time.time_ns()
        task = _spawn_guarded(spawn, context) if guarded else spawn(context)
        task.add_done_callback(functools.partial(_on_done, start))
        return task
    base = context if context is not None else contextvars.copy_context()
    label = span if isinstance(span, str) else str(name or getattr(coro, "__qualname__", "task"))
    base, task_span = _spanned_context(label, base)
    task = _spawn_guarded(spawn, base) if guarded else spawn(base)
    _end_span_when_done(task, task_span)
    return task


def create_task(
    coro: Coroutine[Any, Any, T],
    *,
    name: str | None = None,
    span: bool | str = False,
    context: contextvars.Context | None = None,
) -> asyncio.Task[T]:
    """``asyncio.create_task`` that records failures in the creator's trace.

    Args:
        span: True (or a span name) to run the task in its own span, the parent of everything
            the coroutine does; the span ends with the task and records its error.
        context: as for ``asyncio.create_task``; default a copy of the current one.
    """
    loop = asyncio.get_running_loop()
    return _launch(
        lambda ctx: loop.create_task(coro, name=name, context=ctx),
        coro,
        name,
        span,
        context,
        loop.get_task_factory() is not None,
    )


def _as_task(aw: Awaitable[T], span: bool | str) -> Awaitable[T]:
    if asyncio.iscoroutine(aw):
        return create_task(aw, span=span)
    return aw


async def gather(
    *aws: Awaitable[Any], return_exceptions: bool = False, span: bool | str = False
) -> list[Any]:
    """``asyncio.gather`` whose coroutines become tracectx tasks (see `create_task`)."""
    return list(
        await asyncio.gather(*(_as_task(a, span) for a in aws), return_exceptions=return_exceptions)
    )


async def wait_for(aw: Awaitable[T], timeout: float | None, *, span: bool | str = False) -> T:
    """``asyncio.wait_for`` on a tracectx task; a timeout is a TRANSIENT ``TimeoutError``."""
    return await asyncio.wait_for(_as_task(aw, span), timeout)


class TaskGroup(asyncio.TaskGroup):
    """``asyncio.TaskGroup`` whose tasks record failures and can each get a span."""

    def __init__(self, *, span: bool | str = False) -> None:
        super().__init__()
        self._tracectx_span = span

    def create_task(
        self,
        coro: Generator[Any, None, T] | Coroutine[Any, Any, T],
        *,
        name: str | None = None,
        context: contextvars.Context | None = None,
    ) -> asyncio.Task[T]:
        spawn = functools.partial(super().create_task, coro, name=name)
        guarded = asyncio.get_running_loop().get_task_factory() is not None
        return _launch(
            lambda ctx: spawn(context=ctx), coro, name, self._tracectx_span, context, guarded
        )


def _noting(fn: Callable[..., T], raised: list[BaseException]) -> Callable[..., T]:
    @functools.wraps(fn)
    def call(*args: Any) -> T:
        try:
            return fn(*args)
        except BaseException as exc:
            raised.append(exc)
            raise

    return call


async def run_in_executor(executor: Any, fn: Callable[..., T], *args: Any) -> T:
    """``loop.run_in_executor`` that runs `fn` in the caller's context (asyncio's does not),
    and raises the worker's own exception (asyncio would raise a copy of a ``TimeoutError``)."""
    loop = asyncio.get_running_loop()
    raised: list[BaseException] = []
    try:
        return await loop.run_in_executor(executor, bind_context(_noting(fn, raised)), *args)
    except Exception as exc:
        if not raised or raised[0] is exc or type(raised[0]) is not type(exc):
            raise
        original = raised[0]
    raise original  # outside the handler: the copy must not become its __context__


def keep_worker_errors(convert: Callable[[BaseException], BaseException]) -> Callable[..., Any]:
    """Wrap asyncio's future-exception converter so the awaiting side gets the worker's error.

    Where the converted class is the same (``TimeoutError``, one class since 3.11) the worker's
    exception itself is kept; where it differs (the concurrent ``CancelledError`` and
    ``InvalidStateError``) the new one gets the worker's identity, traceback and causes.
    """

    @functools.wraps(convert)
    def keeping(exc: BaseException) -> BaseException:
        converted = convert(exc)
        if converted is exc or type(converted) is type(exc):
            return exc
        converted.__dict__.update(exc.__dict__)
        converted.__cause__, converted.__context__ = exc.__cause__, exc.__context__
        converted.__suppress_context__ = exc.__suppress_context__
        return converted.with_traceback(exc.__traceback__)

    return keeping


_TaskFactory = Callable[..., "asyncio.Future[Any]"]


def instrument_loop(loop: asyncio.AbstractEventLoop | None = None) -> None:
    """Opt-in: cover ``loop.create_task`` and log unretrieved task errors once, with trace ids.

    Chains to the task factory and exception handler already set on the loop.
    """
    loop = loop or asyncio.get_running_loop()
    if getattr(loop, "_tracectx_previous", None) is not None:
        return
    previous_factory = loop.get_task_factory()
    previous_handler = loop.get_exception_handler()
    loop._tracectx_previous = (previous_factory, previous_handler)  # type: ignore[attr-defined]

    def factory(
        the_loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Any], **kwargs: Any
    ) -> asyncio.Future[Any]:
        if previous_factory is not None:
            task = previous_factory(the_loop, coro, **kwargs)
        else:
            task = asyncio.Task(coro, loop=the_loop, **kwargs)
        if not _in_helper.get():
            _watch(task, time.time_ns())
        return task

    def handler(the_loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        future = context.get("future")
        if isinstance(exc, Exception) and isinstance(future, asyncio.Future):
            record_failure(exc, _task_name(future))
            report_unobserved(exc, f"task {_task_name(future)}")
            if previous_handler is None:
                return  # logged once above, with the trace id; skip asyncio's second log
        if previous_handler is not None:
            previous_handler(the_loop, context)
        else:
            the_loop.default_exception_handler(context)

    loop.set_task_factory(factory)  # type: ignore[arg-type]
    loop.set_exception_handler(handler)


def uninstrument_loop(loop: asyncio.AbstractEventLoop | None = None) -> None:
    """Put back the task factory and exception handler `instrument_loop` replaced."""
    loop = loop or asyncio.get_running_loop()
    previous = getattr(loop, "_tracectx_previous", None)
    if previous is None:
        return
    loop.set_task_factory(previous[0])
    loop.set_exception_handler(previous[1])
    loop._tracectx_previous = None  # type: ignore[attr-defined]
