"""asyncio helpers: task spans are parents, failures land on the creator's trace."""

from __future__ import annotations

import asyncio
import contextvars
import logging

import pytest
from opentelemetry import trace
from opentelemetry.trace import StatusCode

from tests.helpers import all_named, by_name, current_ids, hex_span, hex_trace
from tracectx import ErrorKind, aio, bound, error_id, get_bound, new_error, traced
from tracectx import semconv as sc
from tracectx.aio import (
    TaskGroup,
    create_task,
    gather,
    instrument_loop,
    run_in_executor,
    uninstrument_loop,
    wait_for,
)


async def child_work():
    with traced("inside"):
        await asyncio.sleep(0)
    return get_bound()


class TestCreateTask:
    async def test_task_span_is_parent_of_the_coroutines_work(self, spans):
        with traced("request"), bound(account_id="a1"):
            task = create_task(child_work(), span="task")
            assert await task == {"account_id": "a1"}
        request, task_span, inside = (by_name(spans, n) for n in ("request", "task", "inside"))
        assert task_span.parent.span_id == request.context.span_id
        assert inside.parent.span_id == task_span.context.span_id
        assert hex_trace(inside) == hex_trace(request)

    async def test_the_span_is_current_in_the_task_only(self, spans):
        async def current_name():
            return trace.get_current_span().name  # type: ignore[attr-defined]

        with traced("request"):
            creator = trace.get_current_span()
            task = create_task(current_name(), span="task")
            assert trace.get_current_span() is creator
            assert await task == "task"
            assert trace.get_current_span() is creator

    @pytest.mark.parametrize("runtime", ["contextvars", "other"])
    async def test_a_given_context_gives_the_parent_and_is_left_as_it_was(
        self, spans, monkeypatch, runtime
    ):
        if runtime == "other":  # an OTel runtime context other than the default: public API
            monkeypatch.setattr(aio, "_OTEL_CONTEXT", None)

        async def current_name():
            return trace.get_current_span().name  # type: ignore[attr-defined]

        with traced("elsewhere"):
            given = contextvars.copy_context()
        with traced("request"):
            assert await create_task(current_name(), span="task", context=given) == "task"
            assert await create_task(current_name(), span="root", context=contextvars.Context())
        task, elsewhere = by_name(spans, "task"), by_name(spans, "elsewhere")
        assert task.parent.span_id == elsewhere.context.span_id
        assert by_name(spans, "root").parent is None  # OTel never set there: no parent
        assert given.run(trace.get_current_span).name == "elsewhere"

    async def test_coroutine_identity_is_preserved(self):
        coro = child_work()
        task = create_task(coro)
        assert task.get_coro() is coro
        await task
        coro2 = child_work()
        task2 = create_task(coro2, span=True)
        assert task2.get_coro() is coro2
        await task2

    async def test_error_crosses_and_awaiter_is_propagated(self, spans):
        err = new_error(ErrorKind.TRANSIENT, "flaky")

        async def work():
            raise err

        with pytest.raises(type(err)) as info, traced("request"):
            await create_task(work(), span="task")
        assert info.value is err
        task_span, request = by_name(spans, "task"), by_name(spans, "request")
        assert task_span.attributes[sc.ATTR_ROLE] == "origin"
        assert request.attributes[sc.ATTR_ROLE] == "propagated"
        assert request.attributes[sc.ATTR_ORIGIN_SPAN_ID] == hex_span(task_span)
        assert request.attributes[sc.ATTR_ID] == err.error_id

    async def test_cancelled_is_not_an_error(self, spans):
        with traced("request"):
            task = create_task(asyncio.sleep(10), span="sleeper")
            await asyncio.sleep(0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        sleeper = by_name(spans, "sleeper")
        assert sleeper.status.status_code is not StatusCode.ERROR
        assert sleeper.attributes["tracectx.task.cancelled"] is True

    async def test_an_awaited_failure_reaches_the_awaiter_and_is_born_on_its_span(
        self, spans, caplog
    ):
        """A failure somebody retrieves is theirs to record: no extra span, nothing logged
        (unretrieved failures: see test_aio_unretrieved)."""

        async def work():
            raise ValueError("no span here")

        with caplog.at_level(logging.DEBUG, logger="tracectx.unobserved"):
            with pytest.raises(ValueError) as info, traced("request"):
                await create_task(work(), name="worker")
        request = by_name(spans, "request")
        assert all_named(spans, "worker") == []
        assert request.attributes[sc.ATTR_ROLE] == "origin"
        assert request.attributes[sc.ATTR_ID] == error_id(info.value)
        assert not [r for r in caplog.records if r.name == "tracectx.unobserved"]


class TestCombinators:
    async def test_gather_taskgroup_wait_for(self, spans):
        with traced("request"):
            expected = current_ids()[0]

            async def tid():
                await asyncio.sleep(0)
                return current_ids()[0]

            assert await gather(tid(), tid(), span="g") == [expected, expected]
            async with TaskGroup(span="tg") as tg:
                t1 = tg.create_task(tid())
            assert t1.result() == expected
            assert await wait_for(tid(), 1, span="w") == expected
        request = by_name(spans, "request")
        for name in ("g", "tg", "w"):
            for span in all_named(spans, name):
                assert span.parent.span_id == request.context.span_id

    async def test_wait_for_timeout_is_transient(self, spans):
        with pytest.raises(TimeoutError) as info:
            await wait_for(asyncio.sleep(5), 0.01)
        from tracectx import classify

        assert classify(info.value) is ErrorKind.TRANSIENT

    async def test_run_in_executor_keeps_context(self, spans):
        with traced("request"), bound(k="v"):
            got = await run_in_executor(None, lambda: (current_ids(), get_bound()))
            assert got == (current_ids(), {"k": "v"})


class TestLoopInstrumentation:
    async def test_loop_create_task_is_covered_and_unretrieved_error_logged_once(
        self, spans, caplog
    ):
        instrument_loop()
        try:

            async def fire_and_forget():
                raise new_error(ErrorKind.UNKNOWN, "nobody awaits me")

            with caplog.at_level(logging.ERROR), traced("request"):
                asyncio.get_running_loop().create_task(fire_and_forget(), name="ff")
                await asyncio.sleep(0.01)
            import gc

            gc.collect()
            await asyncio.sleep(0)
        finally:
            uninstrument_loop()
        failure, request = by_name(spans, "task ff"), by_name(spans, "request")
        assert hex_trace(failure) == hex_trace(request)
        assert failure.attributes[sc.ATTR_KIND] == "UNKNOWN"
        logged = [r for r in caplog.records if "nobody awaits me" in r.getMessage()]
        assert len(logged) == 1 and hex_trace(request) in logged[0].getMessage()
        assert not [r for r in caplog.records if "never retrieved" in r.getMessage()]

    async def test_chains_and_uninstalls(self):
        loop = asyncio.get_running_loop()
        seen = []
        loop.set_exception_handler(lambda lp, ctx: seen.append(ctx["message"]))
        instrument_loop()
        loop.call_exception_handler({"message": "plain"})
        uninstrument_loop()
        assert seen == ["plain"]
        assert loop.get_task_factory() is None
        loop.set_exception_handler(None)
