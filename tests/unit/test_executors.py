"""Thread pools, threads and process pools keep the submitter's trace; errors land on it."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import gc
import logging
import multiprocessing
import threading
import weakref
from concurrent.futures.process import BrokenProcessPool

import pytest
import structlog
from opentelemetry import context as otel_context
from opentelemetry import trace

from tests.helpers import by_name, current_ids, hex_span, hex_trace, run_instrumented
from tests.unit import procwork
from tracectx import ErrorKind, bind, bound, get_bound, new_error, traced
from tracectx import semconv as sc
from tracectx.envelope import to_dict
from tracectx.executors import (
    ContextProcessPoolExecutor,
    ContextThread,
    ContextThreadPoolExecutor,
    bind_context,
    wrap_executor,
)
from tracectx.hooks import instrument, uninstrument


class TestContextThreadPoolExecutor:
    def test_work_runs_in_submitter_trace_with_bound_metadata(self, spans):
        with ContextThreadPoolExecutor(2) as pool:
            with traced("request"), bound(account_id="acc_1"):
                fut = pool.submit(traced("work")(lambda: get_bound()))
                assert fut.result() == {"account_id": "acc_1"}
        request, work = by_name(spans, "request"), by_name(spans, "work")
        assert hex_trace(work) == hex_trace(request)
        assert work.parent.span_id == request.context.span_id

    def test_error_crosses_with_same_object_and_id(self, spans):
        err = new_error(ErrorKind.TRANSIENT, "flaky", code="T1")

        def work():
            raise err

        with ContextThreadPoolExecutor(1) as pool, pytest.raises(type(err)) as info:
            with traced("request"):
                pool.submit(work).result()
        assert info.value is err
        request = by_name(spans, "request")
        [failure] = [s for s in spans.get_finished_spans() if s.name.endswith("<locals>.work")]
        assert failure.attributes[sc.ATTR_ROLE] == "origin"
        assert failure.attributes[sc.ATTR_ID] == err.error_id
        assert failure.parent.span_id == request.context.span_id
        assert request.attributes[sc.ATTR_ROLE] == "propagated"
        assert request.attributes[sc.ATTR_ORIGIN_SPAN_ID] == hex_span(failure)

    def test_initializer_runs_in_an_empty_context(self, spans):
        seen = []
        with traced("first-request"), bound(tenant="t1"):
            pool = ContextThreadPoolExecutor(1, initializer=lambda: seen.append(current_ids()))
            pool.submit(lambda: None).result()
        pool.shutdown()
        assert not trace.get_current_span().get_span_context().is_valid
        assert seen == [("0" * 32, "0" * 16)]

    def test_done_callback_runs_in_the_adders_context(self, spans):
        seen = {}
        release = threading.Event()
        with ContextThreadPoolExecutor(1) as pool:
            with traced("submitter"):
                fut = pool.submit(release.wait)
            with traced("adder"):
                fut.add_done_callback(lambda f: seen.update(ids=current_ids()))
                adder_ids = current_ids()
            release.set()
            fut.result()
        assert seen["ids"] == adder_ids

    def test_structlog_context_does_not_leak_between_tasks(self):
        def first():
            structlog.contextvars.bind_contextvars(user="alice")
            return structlog.contextvars.get_contextvars()

        def second():
            return structlog.contextvars.get_contextvars()

        with ContextThreadPoolExecutor(1) as pool:
            assert pool.submit(first).result() == {"user": "alice"}
            assert pool.submit(second).result() == {}

    def test_map_keeps_context(self, spans):
        with ContextThreadPoolExecutor(3) as pool, traced("request"):
            ids = set(pool.map(lambda _: current_ids()[0], range(10)))
        assert ids == {hex_trace(by_name(spans, "request"))}

    def test_unread_failed_future_is_logged_once(self, spans, caplog):
        def work():
            raise new_error(ErrorKind.BUSINESS, "nobody reads me")

        with ContextThreadPoolExecutor(1) as pool, traced("request"):
            fut = pool.submit(work)
            concurrent.futures.wait([fut])
        with caplog.at_level(logging.ERROR, logger="tracectx.unobserved"):
            del fut
            import gc

            gc.collect()
        lines = [r for r in caplog.records if "nobody reads me" in r.getMessage()]
        assert len(lines) == 1
        assert hex_trace(by_name(spans, "request")) in lines[0].getMessage()


class TestWrapExecutor:
    def test_any_executor(self, spans):
        inner = concurrent.futures.ThreadPoolExecutor(1)
        pool = wrap_executor(inner)
        assert isinstance(pool, concurrent.futures.Executor)
        with traced("request"), bound(k="v"):
            assert pool.submit(get_bound).result() == {"k": "v"}
            assert pool.submit(current_ids).result()[0] == current_ids()[0]
        pool.shutdown()

    def test_bind_context_for_callbacks(self, spans):
        with traced("request"):
            cb = bind_context(current_ids)
            expected = current_ids()
        result = []
        t = threading.Thread(target=lambda: result.append(cb()))
        t.start()
        t.join()
        assert result == [expected]


class TestThreads:
    def test_subclass_overriding_run_keeps_starter_context(self, spans):
        class Worker(ContextThread):
            def run(self):
                self.ids = current_ids()
                self.bound = get_bound()

        with traced("starter"), bound(job="j1"):
            w = Worker()
            w.start()
            expected = current_ids()
        w.join()
        assert w.ids == expected and w.bound == {"job": "j1"}

    def test_fire_and_forget_error_lands_on_the_starters_trace(self, spans, caplog, monkeypatch):
        monkeypatch.setattr(threading, "excepthook", threading.__excepthook__)
        instrument()
        try:

            def boom():
                raise new_error(ErrorKind.FATAL, "thread died")

            with caplog.at_level(logging.ERROR, logger="tracectx.unobserved"), traced("starter"):
                t = threading.Thread(target=boom, name="bg")
                t.start()
                t.join()
        finally:
            uninstrument()
        starter = by_name(spans, "starter")
        failure = by_name(spans, "thread bg")
        assert hex_trace(failure) == hex_trace(starter)
        assert failure.attributes[sc.ATTR_KIND] == "FATAL"
        logged = [r for r in caplog.records if r.name == "tracectx.unobserved"]
        assert len(logged) == 1 and hex_trace(starter) in logged[0].getMessage()


class TestInstrument:
    def test_plain_pool_workers_do_not_keep_the_first_requests_context(self, spans):
        """OTel's ThreadingInstrumentor leaves the first submitter's context on pool threads."""
        instrument()
        try:
            pool = concurrent.futures.ThreadPoolExecutor(1)
            with traced("first"):
                pool.submit(lambda: None).result()
            inner = threading.Thread(target=lambda: None)
            # work submitted outside any span must see no span at all
            assert pool.submit(current_ids).result() == ("0" * 32, "0" * 16)
            with traced("second"):
                assert pool.submit(current_ids).result()[0] == current_ids()[0]
            pool.shutdown()
            del inner
        finally:
            uninstrument()

    def test_timer_and_run_in_executor(self, spans):
        import asyncio

        instrument()
        try:
            got = []
            with traced("req"):
                expected = current_ids()
                t = threading.Timer(0.01, lambda: got.append(current_ids()))
                t.start()
            t.join()

            async def main():
                loop = asyncio.get_running_loop()
                with traced("areq"):
                    a = await loop.run_in_executor(None, current_ids)
                    b = await asyncio.to_thread(current_ids)
                    return a, b, current_ids()

            a, b, exp2 = asyncio.run(main())
        finally:
            uninstrument()
        assert got == [expected]
        assert a == exp2 and b == exp2

    def test_uninstrument_restores_originals(self):
        before = (threading.Thread.start, concurrent.futures.ThreadPoolExecutor.submit)
        instrument()
        assert threading.Thread.start is not before[0]
        uninstrument()
        assert (threading.Thread.start, concurrent.futures.ThreadPoolExecutor.submit) == before

    def test_chains_to_previous_excepthook(self):
        seen = []
        previous = threading.excepthook
        threading.excepthook = lambda args: seen.append(args.exc_value)
        try:
            instrument()
            t = threading.Thread(target=lambda: 1 / 0)
            t.start()
            t.join()
            uninstrument()
        finally:
            threading.excepthook = previous
        assert len(seen) == 1 and isinstance(seen[0], ZeroDivisionError)


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
class TestProcessPool:
    def _pool(self, method):
        return ContextProcessPoolExecutor(1, mp_context=multiprocessing.get_context(method))

    def test_child_gets_submitters_trace_and_metadata_nothing_stale(self, method, spans):
        with self._pool(method) as pool:
            with traced("first"), bound(account_id="acc_1"):
                structlog.contextvars.bind_contextvars(request="r1")
                first = pool.submit(procwork.whoami).result()
                first_ids = current_ids()
            structlog.contextvars.clear_contextvars()
            with traced("second"):
                second = pool.submit(procwork.whoami).result()
                second_ids = current_ids()
            third = pool.submit(procwork.whoami).result()
        assert (first["trace_id"], first["parent_span_id"]) == first_ids
        assert first["bound"] == {"account_id": "acc_1"}
        assert first["log_ctx"] == {"request": "r1"}
        assert (second["trace_id"], second["parent_span_id"]) == second_ids
        assert second["bound"] == {} and second["log_ctx"] == {}
        assert third["trace_id"] is None

    def test_error_identity_crosses_back(self, method, spans, tmp_path):
        id_file = tmp_path / "id"
        with self._pool(method) as pool, pytest.raises(Exception) as info, traced("request"):
            pool.submit(procwork.fail, str(id_file)).result()
        err = info.value
        assert err.error_id == id_file.read_text()
        assert (err.kind, err.code, err.metadata["step"]) == (
            ErrorKind.BUSINESS,
            "E_CHILD",
            "child",
        )
        request = by_name(spans, "request")
        assert request.attributes[sc.ATTR_ID] == err.error_id

    def test_unpicklable_exception_keeps_identity(self, method, tmp_path):
        id_file = tmp_path / "id"
        with self._pool(method) as pool, pytest.raises(Exception) as info:
            pool.submit(procwork.fail_unpicklable, str(id_file)).result()
        assert info.value.error_id == id_file.read_text()
        assert info.value.remote_type == "tests.unit.procwork.Unpicklable"

    def test_workers_and_initializer_start_in_an_empty_context(self, method, spans):
        """Under fork the worker used to keep the forking request's trace, bound metadata
        (secrets included) and structlog context, and its initializer ran in them."""
        ctx = multiprocessing.get_context(method)
        pool = ContextProcessPoolExecutor(1, mp_context=ctx, initializer=procwork.remember_context)
        with pool, traced("request"), bound(api_token="s3cr3t", tenant="t1"):
            structlog.contextvars.bind_contextvars(request_id="r1")
            seen = pool.submit(procwork.seen_by_initializer).result()
        structlog.contextvars.clear_contextvars()
        assert seen == {"trace_id": None, "parent_span_id": None, "bound": {}, "log_ctx": {}}

    def test_plain_pool_under_instrument_forks_nothing_of_the_request(self, method, spans):
        instrument()
        try:
            ctx = multiprocessing.get_context(method)
            pool = concurrent.futures.ProcessPoolExecutor(
                1, mp_context=ctx, initializer=procwork.remember_context
            )
            with pool, traced("request"), bound(api_token="s3cr3t"):
                seen = pool.submit(procwork.seen_by_initializer).result()
                child = pool.submit(procwork.whoami).result()
                ids = current_ids()
        finally:
            uninstrument()
        assert seen["trace_id"] is None and seen["bound"] == {}
        assert (child["trace_id"], child["parent_span_id"]) == ids  # the work still gets it

    @pytest.mark.parametrize("unpicklable", [False, True])
    def test_metadata_bound_in_the_child_rides_back(self, method, unpicklable, spans):
        with self._pool(method) as pool, traced("request"), bound(request="r1"):
            with pytest.raises(Exception) as info:
                pool.submit(procwork.bind_then_fail, unpicklable).result()
        err = info.value
        expected = {"request": "r1", "order_id": "o-7"}
        assert to_dict(err)["metadata"] == expected
        assert err.metadata == expected

    def test_a_worker_that_dies_is_a_transient_error(self, method, spans):
        with self._pool(method) as pool, pytest.raises(BrokenProcessPool), traced("request"):
            pool.submit(procwork.die).result()
        request = by_name(spans, "request")
        assert request.attributes[sc.ATTR_KIND] == "TRANSIENT"


def test_fork_origin_is_the_child_span(spans):
    """Under fork the child inherits the SDK provider: its failure span is the origin."""
    ctx = multiprocessing.get_context("fork")
    with ContextProcessPoolExecutor(1, mp_context=ctx) as pool, pytest.raises(Exception):
        with traced("request"):
            pool.submit(procwork.fail, "/dev/null").result()
    request = by_name(spans, "request")
    assert request.attributes[sc.ATTR_ROLE] == "propagated"
    assert len(request.attributes[sc.ATTR_ORIGIN_SPAN_ID]) == 16


def test_contextvars_copy_is_per_task():
    var = contextvars.ContextVar("v", default=0)
    with ContextThreadPoolExecutor(1) as pool:
        assert pool.submit(lambda: (var.set(5), var.get())[1]).result() == 5
        assert pool.submit(var.get).result() == 0


class TestThreadLifecycle:
    def test_context_thread_under_instrument_starts_and_runs_in_the_starters_context(self, spans):
        """Both layers used to enter the same Context: the thread died before start() returned."""
        got = []
        instrument()
        try:
            with traced("starter"), bound(job="j1"):
                expected = current_ids()
                thread = ContextThread(target=lambda: got.append((current_ids(), get_bound())))
                starter = threading.Thread(target=thread.start, daemon=True)
                starter.start()
                starter.join(10)
                assert not starter.is_alive(), "ContextThread.start() never returned"
            thread.join(10)
        finally:
            uninstrument()
        assert got == [(expected, {"job": "j1"})]

    def test_context_thread_under_opentelemetry_instrument(self):
        code = (
            "from tracectx.executors import ContextThread\n"
            "t = ContextThread(target=print, args=('ran',))\n"
            "t.start()\n"
            "t.join()\n"
        )
        out = run_instrumented(code, timeout=60)
        assert (out.returncode, out.stdout) == (0, "ran\n"), out.stderr[-2000:]

    @pytest.mark.parametrize("instrumented", [False, True])
    def test_a_finished_thread_is_freed_without_the_cyclic_gc(self, instrumented):
        """Like a plain Thread: nothing keeps it alive once joined and dropped."""
        if instrumented:
            instrument()
        gc.collect()
        gc.disable()
        try:
            threads = [ContextThread(target=lambda: None)]
            if instrumented:
                threads.append(threading.Thread(target=lambda: None))
            for thread in threads:
                thread.start()
                thread.join()
            refs = [weakref.ref(t) for t in threads]
            del threads, thread
            assert [r() for r in refs] == [None] * len(refs)
        finally:
            gc.enable()
            uninstrument()

    def test_a_thread_that_fails_to_start_is_left_as_it_was(self, monkeypatch):
        def refuse(self):
            raise RuntimeError("can't start new thread")

        monkeypatch.setattr(threading.Thread, "start", refuse)
        thread = ContextThread(target=lambda: None)
        with pytest.raises(RuntimeError):
            thread.start()
        assert "run" not in vars(thread) and "_tracectx_context" not in vars(thread)

    def test_context_thread_error_is_logged_once_with_its_trace_id(
        self, spans, caplog, capsys, monkeypatch
    ):
        """Without hooks.instrument(): recorded on the starter's trace *and* logged once."""
        monkeypatch.setattr(threading, "excepthook", threading.__excepthook__)

        def boom():
            bind(step="charge")
            raise new_error(ErrorKind.BUSINESS, "thread failed")

        with caplog.at_level(logging.ERROR, logger="tracectx.unobserved"), traced("starter"):
            thread = ContextThread(target=boom, name="bg")
            thread.start()
            thread.join()
        starter, failure = by_name(spans, "starter"), by_name(spans, "thread bg")
        assert hex_trace(failure) == hex_trace(starter)
        [line] = [r for r in caplog.records if r.name == "tracectx.unobserved"]
        message = line.getMessage()
        assert hex_trace(starter) in message and "tracectx.errors.TracedError" in message
        assert "Exception in thread" not in capsys.readouterr().err  # not printed twice

    def test_an_applications_excepthook_still_sees_context_thread_errors(self, monkeypatch):
        seen = []
        monkeypatch.setattr(threading, "excepthook", lambda args: seen.append(args.exc_value))
        thread = ContextThread(target=lambda: 1 / 0)
        thread.start()
        thread.join()
        assert len(seen) == 1 and isinstance(seen[0], ZeroDivisionError)


def messy_work() -> None:
    """Work that leaves everything attached: a plain bind, a raw attach, structlog, then fails."""
    bind(leaked="yes")
    otel_context.attach(otel_context.set_value("tracectx-test-leak", 1))
    structlog.contextvars.bind_contextvars(leaked="yes")
    with traced("messy"):
        raise ValueError("messy work failed")


class TestContextAfterTheWork:
    """Whatever the work attached and never detached, the caller's context is the one from
    before (and so is a process worker's)."""

    def _assert_unchanged(self, before):
        assert otel_context.get_current() is before
        assert get_bound() == {"request": "r1"}
        assert structlog.contextvars.get_contextvars() == {}

    def test_thread_pool_bind_context_thread(self, spans, monkeypatch):
        monkeypatch.setattr(threading, "excepthook", threading.__excepthook__)
        with traced("request"), bound(request="r1"):
            before = otel_context.get_current()
            with ContextThreadPoolExecutor(1) as pool, pytest.raises(ValueError):
                pool.submit(messy_work).result()
            self._assert_unchanged(before)
            with pytest.raises(ValueError):
                bind_context(messy_work)()
            self._assert_unchanged(before)
            thread = ContextThread(target=messy_work)
            thread.start()
            thread.join()
            self._assert_unchanged(before)

    def test_process_child_wrapper(self, spans):
        """What a pool worker runs, run here: the worker's own context comes out untouched."""
        from tracectx.executors import process_call

        with traced("request"), bound(request="r1"):
            before = otel_context.get_current()
            run, *call = process_call(messy_work, (), {})
            with pytest.raises(ValueError):
                run(*call)
            self._assert_unchanged(before)

    async def test_asyncio_paths(self, spans):
        from tracectx import aio

        with traced("request"), bound(request="r1"):
            before = otel_context.get_current()
            with pytest.raises(ValueError):
                await aio.create_task(asyncio.to_thread(messy_work), span="task")
            self._assert_unchanged(before)
            with pytest.raises(ValueError):
                await aio.run_in_executor(None, messy_work)
            self._assert_unchanged(before)


class TestUnreadFailures:
    """Watching for a failed future nobody reads costs nothing until the work fails."""

    def test_a_successful_future_has_no_python_result_and_no_finalizer(self):
        with ContextThreadPoolExecutor(1) as pool:
            fut = pool.submit(lambda: 1)
            assert fut.result() == 1
        assert type(fut) is concurrent.futures.Future  # no class switch: no __dict__ made
        assert not hasattr(type(fut), "__del__")

    @pytest.mark.parametrize("read", ["result", "exception"])
    def test_a_reader_already_waiting_when_the_work_fails_has_read_it(self, read, caplog):
        started, release = threading.Event(), threading.Event()

        def work():
            started.set()
            release.wait()
            raise new_error(ErrorKind.BUSINESS, "read while waiting")

        got = []
        with ContextThreadPoolExecutor(1) as pool:
            fut = pool.submit(work)
            started.wait()

            def reader(future):
                try:
                    got.append(getattr(future, read)())
                except Exception as exc:
                    got.append(exc)

            waiting = threading.Thread(target=reader, args=(fut,))
            waiting.start()
            while not fut._condition._waiters:  # the reader is blocked inside result/exception
                threading.Event().wait(0.001)
            release.set()
            waiting.join()
        with caplog.at_level(logging.DEBUG, logger="tracectx.unobserved"):
            del fut
            gc.collect()
        assert len(got) == 1 and "read while waiting" in str(got[0])
        assert not [r for r in caplog.records if r.name == "tracectx.unobserved"]

    @pytest.mark.parametrize("read", ["result", "exception", "wrap_future"])
    def test_a_failure_read_later_is_not_reported(self, read, caplog):
        def work():
            raise new_error(ErrorKind.BUSINESS, "read later")

        with ContextThreadPoolExecutor(1) as pool:
            fut = pool.submit(work)
            concurrent.futures.wait([fut])
            if read == "wrap_future":

                async def awaited(future):
                    return await asyncio.wrap_future(future)

                with pytest.raises(Exception, match="read later"):
                    asyncio.run(awaited(fut))
            elif read == "result":
                with pytest.raises(Exception, match="read later"):
                    fut.result()
            else:
                assert "read later" in str(fut.exception())
        with caplog.at_level(logging.DEBUG, logger="tracectx.unobserved"):
            del fut
            gc.collect()
        assert not [r for r in caplog.records if r.name == "tracectx.unobserved"]

    def test_work_that_fails_before_submit_returns_is_still_watched(self, spans, caplog):
        """An executor that runs work inline: the submitter, not the worker, starts the watch."""

        class Inline(concurrent.futures.Executor):
            def submit(self, fn, /, *args, **kwargs):
                fut = concurrent.futures.Future()
                try:
                    fut.set_result(fn(*args, **kwargs))
                except Exception as exc:
                    fut.set_exception(exc)
                return fut

        def work():
            raise new_error(ErrorKind.BUSINESS, "inline and unread")

        with traced("request"):
            fut = wrap_executor(Inline()).submit(work)
        with caplog.at_level(logging.DEBUG, logger="tracectx.unobserved"):
            del fut
            gc.collect()
        [line] = [r for r in caplog.records if "inline and unread" in r.getMessage()]
        assert hex_trace(by_name(spans, "request")) in line.getMessage()


class TestBindContext:
    def test_keeps_the_functions_name_docs_and_wrapped(self):
        def charge(amount: int) -> int:
            """Charge the card."""
            return amount

        bound_charge = bind_context(charge)
        assert (bound_charge.__name__, bound_charge.__doc__) == ("charge", "Charge the card.")
        assert bound_charge.__wrapped__ is charge
        assert bind_context(bound_charge) is bound_charge
        assert bound_charge(3) == 3
