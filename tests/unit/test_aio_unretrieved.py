"""Failures of tasks nobody retrieves, without a done-callback per task.

asyncio reports a collected task whose exception was never retrieved to the loop's exception
handler; tracectx's handler (put in front of the loop's by `create_task` / `instrument_loop`)
gives the failure a span in the trace the task ran in and logs it once with its trace id.
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
import logging
import sys

import pytest

from tests.helpers import all_named, by_name, hex_span, hex_trace
from tracectx import ErrorKind, bind, error_id, new_error, traced
from tracectx import semconv as sc
from tracectx.aio import TaskGroup, create_task, gather, instrument_loop, uninstrument_loop

PY312 = sys.version_info >= (3, 12)


async def fail(message: str = "nobody awaits me") -> None:
    raise new_error(ErrorKind.UNKNOWN, message)


async def finish(task: asyncio.Task[object]) -> None:
    """Let `task` finish without retrieving anything from it."""
    while not task.done():
        await asyncio.sleep(0)


async def collect() -> None:
    """After the caller dropped its last reference: collect, as the GC eventually would."""
    gc.collect()
    await asyncio.sleep(0)


def unobserved_lines(caplog: pytest.LogCaptureFixture, text: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if text in r.getMessage()]


class TestUnretrieved:
    async def test_lands_on_a_span_in_the_creators_trace_and_is_logged_once(self, spans, caplog):
        with caplog.at_level(logging.DEBUG), traced("request"):
            task = create_task(fail(), name="worker")
        await finish(task)
        del task
        await collect()
        failure, request = by_name(spans, "task worker"), by_name(spans, "request")
        assert failure.parent.span_id == request.context.span_id
        assert failure.attributes[sc.ATTR_ROLE] == "origin"
        assert failure.attributes[sc.ATTR_KIND] == "UNKNOWN"
        [line] = unobserved_lines(caplog, "nobody awaits me")
        assert line.name == "tracectx.unobserved" and hex_trace(request) in line.getMessage()
        assert not unobserved_lines(caplog, "never retrieved")  # asyncio's own line skipped

    async def test_metadata_bound_inside_the_task_lands_on_its_failure_span(self, spans):
        async def work():
            bind(step="charge")
            raise ValueError("card declined")

        with traced("request"):
            task = create_task(work(), name="worker")
        await finish(task)
        del task
        await collect()
        attrs = by_name(spans, "task worker").attributes
        assert attrs[sc.ATTR_META_PREFIX + "step"] == "charge"

    async def test_a_task_span_records_it_and_it_is_logged_once(self, spans, caplog):
        with caplog.at_level(logging.DEBUG), traced("request"):
            task = create_task(fail("spanned and lost"), span="job")
        await finish(task)
        del task
        await collect()
        job, request = by_name(spans, "job"), by_name(spans, "request")
        assert job.parent.span_id == request.context.span_id
        assert job.attributes[sc.ATTR_ROLE] == "origin"
        assert all_named(spans, "Task") == [] and len(spans.get_finished_spans()) == 2
        [line] = unobserved_lines(caplog, "spanned and lost")
        assert hex_trace(request) in line.getMessage()

    async def test_plain_asyncio_tasks_under_instrument_loop(self, spans, caplog):
        instrument_loop()
        try:
            with caplog.at_level(logging.DEBUG), traced("request"):
                task = asyncio.create_task(fail("plain task"), name="ff")
            await finish(task)
            del task
            await collect()
        finally:
            uninstrument_loop()
        failure, request = by_name(spans, "task ff"), by_name(spans, "request")
        assert failure.parent.span_id == request.context.span_id
        [line] = unobserved_lines(caplog, "plain task")
        assert hex_trace(request) in line.getMessage()

    async def test_a_shared_context_entered_elsewhere_does_not_break_the_report(self, spans):
        """The handler runs in a copy of the task's context: never 'already entered'."""
        shared = contextvars.copy_context()
        with traced("request"):
            task = create_task(fail("shared"), name="worker", context=shared)
        await finish(task)
        del task
        await collect()
        assert by_name(spans, "task worker").attributes[sc.ATTR_KIND] == "UNKNOWN"


class TestRetrieved:
    @pytest.mark.parametrize("how", ["await", "result", "exception", "gather", "taskgroup"])
    async def test_no_span_and_no_log(self, how, spans, caplog):
        err = new_error(ErrorKind.BUSINESS, "seen")

        async def work():
            raise err

        with caplog.at_level(logging.DEBUG), traced("request"):
            if how == "gather":
                assert await gather(work(), return_exceptions=True) == [err]
            elif how == "taskgroup":
                with pytest.raises(ExceptionGroup):
                    async with TaskGroup() as group:
                        group.create_task(work(), name="worker")
            else:
                task = create_task(work(), name="worker")
                if how == "await":
                    with pytest.raises(type(err)):
                        await task
                else:
                    await asyncio.wait([task])
                    with pytest.raises(type(err)) if how == "result" else _nothing():
                        getattr(task, how)()
                del task
        gc.collect()
        await asyncio.sleep(0)
        assert all_named(spans, "worker") == []
        assert not [r for r in caplog.records if r.name == "tracectx.unobserved"]
        assert not unobserved_lines(caplog, "never retrieved")


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


class TestTheLoopsHandler:
    async def test_the_handler_set_before_is_chained_not_replaced(self, spans):
        loop = asyncio.get_running_loop()
        seen: list[dict[str, object]] = []

        def mine(the_loop, context):
            seen.append(context)

        loop.set_exception_handler(mine)
        try:
            with traced("request"):
                task = create_task(fail("chained"), name="worker")
            await finish(task)
            del task
            await collect()
            loop.call_exception_handler({"message": "plain"})
            assert [c["message"] for c in seen] == ["Task exception was never retrieved", "plain"]
            assert (
                error_id(seen[0]["exception"])
                == by_name(spans, "task worker").attributes[sc.ATTR_ID]
            )
            uninstrument_loop()
            assert loop.get_exception_handler() is mine
        finally:
            loop.set_exception_handler(None)

    async def test_a_handler_set_later_is_chained_by_the_next_task(self, spans):
        loop = asyncio.get_running_loop()
        await create_task(asyncio.sleep(0))
        seen: list[str] = []
        loop.set_exception_handler(lambda lp, ctx: seen.append(ctx["message"]))
        try:
            with traced("request"):
                task = create_task(fail("later"), name="worker")
            await finish(task)
            del task
            await collect()
            assert seen == ["Task exception was never retrieved"]
            assert by_name(spans, "task worker").attributes[sc.ATTR_KIND] == "UNKNOWN"
        finally:
            loop.set_exception_handler(None)

    async def test_uninstrument_loop_puts_everything_back(self):
        loop = asyncio.get_running_loop()
        factory_before = loop.get_task_factory()
        await create_task(asyncio.sleep(0))
        instrument_loop()
        uninstrument_loop()
        assert loop.get_exception_handler() is None
        assert loop.get_task_factory() is factory_before


class TestNothingPerTask:
    async def test_no_done_callback_is_added(self):
        """The callback machinery (a context copy, a loop handle, a Context.run) was the cost."""
        task = create_task(asyncio.sleep(0))
        assert not task._callbacks
        await task

    @pytest.mark.skipif(PY312, reason="3.11 only: where the context is remembered")
    @pytest.mark.parametrize("message", [None, "shutting down"])
    @pytest.mark.parametrize("when", ["before it runs", "while it waits"])
    async def test_cancellation_is_untouched_by_the_remembered_context(self, when, message):
        task = create_task(asyncio.sleep(10))
        if when == "while it waits":
            await asyncio.sleep(0)
        task.cancel(message)
        with pytest.raises(asyncio.CancelledError) as info:
            await task
        assert info.value.args == (() if message is None else (message,))
        assert task.cancelled()


@pytest.mark.skipif(not PY312, reason="eager tasks are 3.12+")
class TestEagerTasks:
    @pytest.mark.parametrize("instrumented", [False, True])
    @pytest.mark.parametrize("span", [False, "eager"])
    async def test_eager_tasks_stay_eager(self, instrumented, span, spans):
        loop = asyncio.get_running_loop()
        loop.set_task_factory(asyncio.eager_task_factory)  # type: ignore[attr-defined]
        if instrumented:
            instrument_loop()
        try:

            async def quick():
                return 7

            with traced("request"):
                task = create_task(quick(), span=span)
                assert task.done() and task.result() == 7
                other = loop.create_task(quick())
                assert other.done()
        finally:
            uninstrument_loop()
            loop.set_task_factory(None)
        if span:
            eager, request = by_name(spans, "eager"), by_name(spans, "request")
            assert eager.parent.span_id == request.context.span_id
            assert hex_span(eager) != hex_span(request)

    async def test_an_eager_task_that_fails_unretrieved_is_recorded(self, spans, caplog):
        loop = asyncio.get_running_loop()
        loop.set_task_factory(asyncio.eager_task_factory)  # type: ignore[attr-defined]
        try:
            with caplog.at_level(logging.DEBUG), traced("request"):
                task = create_task(fail("eager loss"), name="worker")
                assert task.done()
            await finish(task)
            del task
            await collect()
        finally:
            loop.set_task_factory(None)
        failure, request = by_name(spans, "task worker"), by_name(spans, "request")
        assert failure.parent.span_id == request.context.span_id
        [line] = unobserved_lines(caplog, "eager loss")
        assert hex_trace(request) in line.getMessage()
