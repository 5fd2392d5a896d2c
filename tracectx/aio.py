"""asyncio: tasks that keep (and, optionally, open) a span, and no task error left unseen.

asyncio already copies the context into a task; what it lacks is (1) a span per task that is the
*parent* of the coroutine's work — tracectx starts the span first and runs the task in a context
where it is current, so no wrapper coroutine is needed and ``task.get_coro()`` is the user's own
coroutine — and (2) recording of failures nobody retrieves.

(2) costs nothing per task: asyncio already routes "exception was never retrieved" through the
loop's exception handler when a failed task nobody looked at is collected. tracectx puts its own
handler in front of the loop's (chained to the one set before, never replacing it): the failure
gets a span in the trace of the context the task ran in — ``Task.get_context()`` on 3.12+; on
3.11, which has no such method and no ``__dict__`` on C tasks, tracectx remembers that context
in the task's one free object slot, ``_cancel_message`` (unused until the task is cancelled,
and rewritten by every cancellation before asyncio reads it) — and is logged once with its trace
id. There is no done-callback, task factory or wrapper on the hot path, so a task created by
`create_task` costs about what ``asyncio.create_task`` does, and 3.12 eager tasks stay eager.
A failure that *is* retrieved (awaited, ``result()``, a ``TaskGroup``) reaches the code that
retrieved it unchanged, with its id, and is recorded by that code's span like any other error.

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
import sys
from collections.abc import Awaitable, Callable, Coroutine, Generator
from typing import Any, TypeVar

from opentelemetry import context as otel_context
from opentelemetry import trace

from tracectx import semconv
from tracectx.context import runtime_context_var
from tracectx.executors import bind_context
from tracectx.recording import record_error, record_failure
from tracectx.tracing import sampled_out
from tracectx.tracing import tracer as _tracer
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
_CANCELLED_ATTR = semconv.ATTR_TASK_CANCELLED
# 3.11 tasks cannot say which context they run in: remember it in the task (see the module doc).
_REMEMBER_CONTEXT = sys.version_info < (3, 12)
_SLOT = "_cancel_message"


def _task_name(task: asyncio.Future[Any], fallback: str = "task") -> str:
    get_name = getattr(task, "get_name", None)
    return str(get_name()) if get_name else fallback


def _remember(task: asyncio.Future[Any], ctx: contextvars.Context) -> None:
    """3.11: keep the context `task` runs in where `_task_context` finds it."""
    try:
        setattr(task, _SLOT, ctx)
    except (AttributeError, TypeError):  # not an asyncio future: nothing to remember on
        pass


def _task_context(future: asyncio.Future[Any]) -> contextvars.Context | None:
    """The context a task ran in (so its creator's span), if it can be known."""
    if _REMEMBER_CONTEXT:
        found = getattr(future, _SLOT, None)
    else:
        get_context = getattr(future, "get_context", None)
        found = get_context() if get_context is not None else None
    return found if isinstance(found, contextvars.Context) else None


def _record_and_report(exc: Exception, name: str) -> None:
    # "task …": the span says what it is — work nobody waited for (the analysis reports such
    # errors as unobserved, not absorbed by the span that started the task)
    record_failure(exc, f"task {name}")
    report_unobserved(exc, f"task {name}")


class _UnobservedHandler:
    """The loop exception handler tracectx puts in front of the one set before (`previous`).

    An unretrieved task or future error gets a span in the trace the task ran in and one log
    line with its trace id; asyncio's own "never retrieved" log is then skipped unless an
    application handler was set before, which is always called. Everything else goes on to
    `previous` (or asyncio's default handler) untouched.
    """

    __slots__ = ("previous",)

    def __init__(
        self, previous: Callable[[asyncio.AbstractEventLoop, dict[str, Any]], object] | None
    ):
        self.previous = previous

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        future = context.get("future")
        if isinstance(exc, Exception) and isinstance(future, asyncio.Future):
            name = _task_name(future)
            ctx = _task_context(future)
            if ctx is not None:  # a copy: never re-enter (nor change) the task's own context
                ctx.copy().run(_record_and_report, exc, name)
            else:
                _record_and_report(exc, name)
            if self.previous is None:
                return  # logged once above, with the trace id; skip asyncio's second log
        if self.previous is not None:
            self.previous(loop, context)
        else:
            loop.default_exception_handler(context)


def _watch_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Put tracectx's exception handler in front of the loop's, unless it is there already."""
    handler = loop.get_exception_handler()
    if type(handler) is not _UnobservedHandler:
        loop.set_exception_handler(_UnobservedHandler(handler))


_OTEL_CONTEXT = runtime_context_var()
_NO_OTEL_CONTEXT = otel_context.Context()  # what OTel reads where its variable was never set


def _enter_span(name: str) -> trace.Span:
    """Start a span child of the current one and make it current (run inside the task's
    context, so the creator's context is left as it was): the public-API way, for an OTel
    runtime context other than the default one."""
    span = _tracer().start_span(name)
    otel_context.attach(trace.set_span_in_context(span))
    return span


def _span_into(ctx: contextvars.Context, name: str) -> trace.Span:
    """Start span `name`, child of the span current in `ctx`, and make it current in `ctx`.

    `ctx` is a fresh copy that only the task will run in, and it dies with the task: setting
    OTel's variable in it directly is what ``attach`` would do there, and there is nothing to
    detach (the creator's context is never touched). No Python function runs inside `ctx`
    for it: the parent is read with ``ctx.get`` and passed to ``start_span`` (which then does
    not look the current context up), and the new value is set with ``ctx.run`` of the
    variable's own ``set``. On 3.12 an eager task's first step runs in `ctx` too, so it sees
    its span at once.
    """
    var = _OTEL_CONTEXT
    if var is None:
        return ctx.run(_enter_span, name)
    parent = ctx.get(var, _NO_OTEL_CONTEXT)
    span = _tracer().start_span(name, parent)
    ctx.run(var.set, trace.set_span_in_context(span, parent))
    return span


def _end_span(span: trace.Span, task: asyncio.Future[Any]) -> None:
    """Done callback of a task with a span (run in the task's context): record the task's
    error, if any, without marking it retrieved, then end the span."""
    if task.cancelled():
        span.set_attribute(_CANCELLED_ATTR, True)
    else:
        exc = getattr(task, "_exception", None)
        if isinstance(exc, Exception):
            record_error(exc, span)
    span.end()


def _launch(
    spawn: Callable[[contextvars.Context | None], asyncio.Task[T]],
    coro: Any,
    name: str | None,
    span: bool | str,
    context: contextvars.Context | None,
) -> asyncio.Task[T]:
    if not span:  # hot path: asyncio copies the context itself; nothing per task on 3.12+
        if not _REMEMBER_CONTEXT:
            return spawn(context)
        ctx = context if context is not None else contextvars.copy_context()
        task = spawn(ctx)
        _remember(task, ctx)
        return task
    label = span if isinstance(span, str) else str(name or getattr(coro, "__qualname__", "task"))
    ctx = context.copy() if context is not None else contextvars.copy_context()
    task_span = _span_into(ctx, label)
    task = spawn(ctx)
    _end_span_with(task, task_span, ctx)
    return task


def _end_span_with(
    task: asyncio.Task[Any], task_span: trace.Span, ctx: contextvars.Context
) -> None:
    """End `task_span` when `task` is done, in the task's context (its bound metadata counts)."""
    if task.done():  # an eager task (3.12+) that finished inside create_task
        ctx.run(_end_span, task_span, task)
    else:
        task.add_done_callback(functools.partial(_end_span, task_span), context=ctx)
    if _REMEMBER_CONTEXT:
        _remember(task, ctx)


def create_task(
    coro: Coroutine[Any, Any, T],
    *,
    name: str | None = None,
    span: bool | str = False,
    context: contextvars.Context | None = None,
) -> asyncio.Task[T]:
    """``asyncio.create_task`` whose failure, if nobody retrieves it, is recorded in the
    creator's trace and logged once with its trace id (see the module doc: this puts
    tracectx's exception handler in front of the running loop's, chained to it).

    Args:
        span: True (or a span name) to run the task in its own span, the parent of everything
            the coroutine does; the span ends with the task and records its error.
        context: as for ``asyncio.create_task``; default a copy of the current one.
    """
    loop = asyncio.get_running_loop()
    if type(loop.get_exception_handler()) is not _UnobservedHandler:
        _watch_loop(loop)
    if span:
        ctx = context.copy() if context is not None else contextvars.copy_context()
        var = _OTEL_CONTEXT  # _span_into and _end_span_with, inlined (no helper frames)
        if var is not None:
            parent = ctx.get(var, _NO_OTEL_CONTEXT)
            tracer = _tracer()
            if sampled_out(tracer, trace.get_current_span(parent).get_span_context()):
                # nobody would record the span: none is made (the parent's stays current) and
                # no done callback runs — a failure nobody retrieves still reaches the handler
                # in this context; one that is retrieved gets its id and metadata where it is
                # recorded (metadata bound inside the task outside any `traced` is not kept)
                task = loop.create_task(coro, name=name, context=ctx)
                if _REMEMBER_CONTEXT:
                    try:
                        task._cancel_message = ctx  # type: ignore[attr-defined]  # _task_context
                    except AttributeError:  # a factory's task that is not an asyncio future
                        pass
                return task
        label = (
            span if isinstance(span, str) else str(name or getattr(coro, "__qualname__", "task"))
        )
        if var is not None:
            task_span = tracer.start_span(label, parent)
            ctx.run(var.set, trace.set_span_in_context(task_span, parent))
        else:
            task_span = ctx.run(_enter_span, label)
        task = loop.create_task(coro, name=name, context=ctx)
        if task.done():  # an eager task (3.12+) that finished inside create_task
            ctx.run(_end_span, task_span, task)
        else:
            task.add_done_callback(functools.partial(_end_span, task_span), context=ctx)
        if _REMEMBER_CONTEXT:
            try:
                task._cancel_message = ctx  # type: ignore[attr-defined]  # see _task_context
            except AttributeError:  # a factory's task that is not an asyncio future
                pass
        return task
    # the hot path, inlined: one call to the loop and, on 3.11, one slot written
    if not _REMEMBER_CONTEXT:
        return loop.create_task(coro, name=name, context=context)
    ctx = context if context is not None else contextvars.copy_context()
    task = loop.create_task(coro, name=name, context=ctx)
    try:
        task._cancel_message = ctx  # type: ignore[attr-defined]  # see _task_context
    except AttributeError:  # a factory's task that is not an asyncio future
        pass
    return task


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
    """``asyncio.TaskGroup`` whose tasks can each get a span (the group retrieves every
    task's failure and raises it, so none goes unseen)."""

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
        if not self._tracectx_span:
            return super().create_task(coro, name=name, context=context)
        spawn = functools.partial(super().create_task, coro, name=name)
        return _launch(lambda ctx: spawn(context=ctx), coro, name, self._tracectx_span, context)


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


def _remembering_factory(
    previous: Callable[..., asyncio.Future[Any]] | None,
) -> Callable[..., asyncio.Future[Any]]:
    """3.11: a task factory (chained to `previous`) that remembers each task's context."""

    def factory(
        the_loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Any], **kwargs: Any
    ) -> asyncio.Future[Any]:
        ctx = kwargs.get("context")
        if ctx is None:
            ctx = contextvars.copy_context()  # what the task itself copies: the creator's
            if previous is None:
                kwargs["context"] = ctx  # a factory set before may not take `context`
        if previous is not None:
            task = previous(the_loop, coro, **kwargs)
        else:
            task = asyncio.Task(coro, loop=the_loop, **kwargs)
        _remember(task, ctx)
        return task

    return factory


def instrument_loop(loop: asyncio.AbstractEventLoop | None = None) -> None:
    """Opt-in: record and log once, with trace ids, the failures of tasks nobody retrieves —
    ``loop.create_task`` and ``asyncio.create_task`` ones too, not only `create_task`'s.

    Chains to the exception handler already set on the loop. On 3.12+ that is all it changes;
    on 3.11 it also sets a task factory (chained to the one set before) that remembers each
    task's context.
    """
    loop = loop or asyncio.get_running_loop()
    _watch_loop(loop)
    if not _REMEMBER_CONTEXT or getattr(loop, "_tracectx_factory", None) is not None:
        return
    previous_factory = loop.get_task_factory()
    factory = _remembering_factory(previous_factory)
    loop._tracectx_factory = (factory, previous_factory)  # type: ignore[attr-defined]
    loop.set_task_factory(factory)


def uninstrument_loop(loop: asyncio.AbstractEventLoop | None = None) -> None:
    """Put back the exception handler (and, on 3.11, task factory) tracectx replaced."""
    loop = loop or asyncio.get_running_loop()
    handler = loop.get_exception_handler()
    if isinstance(handler, _UnobservedHandler):
        loop.set_exception_handler(handler.previous)
    installed = getattr(loop, "_tracectx_factory", None)
    if installed is not None:
        if loop.get_task_factory() is installed[0]:
            loop.set_task_factory(installed[1])
        loop._tracectx_factory = None  # type: ignore[attr-defined]
