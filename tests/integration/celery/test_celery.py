"""Celery through a real redis-server and real worker processes (prefork/JSON, solo/pickle)."""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import time
import uuid

import pytest
from celery import chain, chord, group
from opentelemetry.trace import SpanKind

from tests.helpers import all_named, by_name, hex_span, hex_trace
from tests.integration.asgi.missing_dependency import run_loader_without
from tests.integration.celery.conftest import Worker
from tests.integration.celery.worker_app import TRANSIENT_FAILURES, Expected
from tracectx import ErrorKind, TracedError, bound, configure, traced
from tracectx import semconv as sc

pytestmark = pytest.mark.integration


def run_span(worker: Worker, task_id: str, name: str | None = None):
    return worker.wait_for_span(
        lambda s: (
            s.attributes.get("messaging.message.id") == task_id
            and (name is None or s.name == name)
            and s.kind == "consumer"
        )
    )


def run_spans(worker: Worker, task_id: str, count: int, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [
            s
            for s in worker.spans()
            if s.attributes.get("messaging.message.id") == task_id and s.name.startswith("run ")
        ]
        if len(found) >= count:
            return sorted(found, key=lambda s: s.attributes[sc.ATTR_ATTEMPT])
        time.sleep(0.1)
    raise AssertionError(f"expected {count} attempts of {task_id}")


@pytest.fixture(params=["prefork_json", "solo_pickle"])
def worker(request) -> Worker:
    return request.getfixturevalue(request.param)


class TestPublishAndRun:
    def test_one_trace_from_delay_to_worker(self, spans, worker, app_for):
        app = app_for(worker)
        # the sender propagates both keys; the worker trusts tenant_id only (WORKER_ALLOWLIST)
        configure(propagate_keys=["tenant_id", "account_id"])
        with traced("request"), bound(tenant_id="t_1", account_id="acc_1"):
            result = app.signature("t.ids").delay()
            seen = result.get(timeout=20)
        request, send = by_name(spans, "request"), by_name(spans, "send t.ids")
        assert send.kind is SpanKind.PRODUCER and send.parent.span_id == request.context.span_id
        assert send.attributes["messaging.message.id"] == result.id
        run = run_span(worker, result.id)
        assert run.name == "run t.ids"
        assert (run.trace_id, run.parent_id) == (hex_trace(send), hex_span(send))
        assert run.attributes[sc.ATTR_ATTEMPT] == 1
        assert seen["trace_id"] == hex_trace(request)
        assert seen["bound"] == {"tenant_id": "t_1"}
        assert seen["log"]["task_id"] == result.id

    def test_send_task_by_name(self, spans, prefork_json, app_for):
        app = app_for(prefork_json)
        with traced("request"):
            result = app.send_task("t.add", args=(2, 3))
            assert result.get(timeout=20) == 5
        assert run_span(prefork_json, result.id).trace_id == hex_trace(by_name(spans, "request"))

    def test_spans_name_their_messaging_operation(self, spans, prefork_json, app_for):
        """Required by messaging semconv: ``messaging.operation.name`` beside the type."""
        app = app_for(prefork_json)
        result = app.signature("t.add", args=(1, 1)).delay()
        assert result.get(timeout=20) == 2
        send = dict(by_name(spans, "send t.add").attributes)
        run = run_span(prefork_json, result.id).attributes
        assert (send["messaging.system"], run["messaging.system"]) == ("celery", "celery")
        assert (send["messaging.operation.type"], send["messaging.operation.name"]) == (
            "send",
            "send",
        )
        assert (run["messaging.operation.type"], run["messaging.operation.name"]) == (
            "process",
            "run",
        )
        # the conventions' span name: "{messaging.operation.name} {target}"
        assert by_name(spans, "send t.add").name.split()[0] == send["messaging.operation.name"]
        assert run_span(prefork_json, result.id).name.split()[0] == run["messaging.operation.name"]


class TestErrorsComeBack:
    def test_caller_gets_kind_code_metadata_and_id(self, spans, worker, app_for):
        app = app_for(worker)
        with pytest.raises(TracedError) as info, traced("request"):
            app.signature("t.business", args=("acc_123",)).delay().get(timeout=20)
        err = info.value
        assert (err.kind, err.code) == (ErrorKind.BUSINESS, "E42")
        assert err.metadata["account_id"] == "acc_123"
        assert err.metadata["card_number"] == "[REDACTED]"
        run = worker.wait_for_span(
            lambda s: s.name == "run t.business" and s.attributes.get(sc.ATTR_ID) == err.error_id
        )
        assert run.attributes[sc.ATTR_ROLE] == sc.ROLE_ORIGIN
        assert run.attributes[sc.ATTR_KIND] == "BUSINESS"
        request = by_name(spans, "request")
        assert request.attributes[sc.ATTR_ROLE] == sc.ROLE_PROPAGATED
        assert request.attributes[sc.ATTR_ID] == err.error_id
        assert request.attributes[sc.ATTR_ORIGIN_SPAN_ID] == run.span_id

    def test_custom_traced_error_subclass(self, worker, app_for):
        app = app_for(worker)
        with pytest.raises(TracedError) as info:
            app.signature("t.declined").delay().get(timeout=20)
        assert type(info.value).__name__ == "PaymentDeclined"
        assert (info.value.kind, info.value.code) == (ErrorKind.BUSINESS, "E42")
        assert info.value.metadata["account_id"] == "acc_7"

    def test_real_class_behind_unpicklable_wrapper(self, worker, app_for):
        app = app_for(worker)
        result = app.signature("t.unpicklable").delay()
        with pytest.raises(Exception) as info:
            result.get(timeout=20)
        run = run_span(worker, result.id)
        expected = "tests.integration.celery.worker_app.Unpicklable"
        assert run.attributes[sc.ATTR_ERROR_TYPE] == expected
        assert run.error
        assert getattr(info.value, "remote_type", expected) == expected
        assert info.value._tracectx_error_id == run.attributes[sc.ATTR_ID]

    def test_throws_is_an_expected_outcome(self, worker, app_for):
        app = app_for(worker)
        result = app.signature("t.expected").delay()
        with pytest.raises(Exception) as info:
            result.get(timeout=20)
        assert type(info.value).__name__ == Expected.__name__
        run = run_span(worker, result.id)
        assert not run.error and sc.ATTR_ROLE not in run.attributes
        assert [e.name for e in run.events] == ["tracectx.error.expected"]


class TestRetries:
    def test_transient_retried_with_backoff_each_attempt_a_span(self, spans, worker, app_for):
        app = app_for(worker)
        key = uuid.uuid4().hex
        with traced("request"):
            result = app.signature("t.flaky", args=(key,)).delay()
            assert result.get(timeout=30) == f"ok after {TRANSIENT_FAILURES + 1}"
        attempts = run_spans(worker, result.id, TRANSIENT_FAILURES + 1)
        send = by_name(spans, "send t.flaky")
        assert [a.attributes[sc.ATTR_ATTEMPT] for a in attempts] == [1, 2, 3]
        for attempt in attempts:
            assert (attempt.trace_id, attempt.parent_id) == (hex_trace(send), hex_span(send))
        for failed in attempts[:-1]:
            assert failed.error and failed.attributes[sc.ATTR_KIND] == "TRANSIENT"
            assert failed.attributes[sc.ATTR_ID]
            assert sc.EVENT_RETRY in [e.name for e in failed.events]
        assert not attempts[-1].error
        for previous, attempt in itertools.pairwise(attempts):
            assert [lk.span_id for lk in attempt.links] == [previous.span_id]
        assert len(all_named(spans, "send t.flaky")) == 1  # retries are not new publishes

    def test_business_never_retried(self, worker, app_for):
        app = app_for(worker)
        result = app.signature("t.business_no_retry").delay()
        with pytest.raises(TracedError):
            result.get(timeout=20)
        time.sleep(0.5)
        (attempt,) = run_spans(worker, result.id, 1)
        assert attempt.attributes[sc.ATTR_KIND] == "BUSINESS"

    def test_manual_retry_attempts_linked(self, prefork_json, app_for):
        app = app_for(prefork_json)
        result = app.signature("t.manual_retry").delay()
        assert result.get(timeout=20) == 2
        attempts = run_spans(prefork_json, result.id, 3)
        assert attempts[0].attributes[sc.ATTR_ERROR_TYPE] == "ConnectionError"
        assert attempts[1].links[0].span_id == attempts[0].span_id


class TestCanvas:
    def test_chain_keeps_one_trace_and_second_failure_returns(self, spans, worker, app_for):
        app = app_for(worker)
        with pytest.raises(TracedError) as info, traced("request"):
            chain(
                app.signature("t.add", args=(1, 2)), app.signature("t.fail_after")
            ).apply_async().get(timeout=20)
        assert info.value.kind is ErrorKind.FATAL
        trace_id = hex_trace(by_name(spans, "request"))
        failed = worker.wait_for_span(
            lambda s: s.name == "run t.fail_after" and s.trace_id == trace_id
        )
        first = worker.wait_for_span(lambda s: s.name == "run t.add" and s.trace_id == trace_id)
        assert failed.attributes[sc.ATTR_ID] == info.value.error_id
        publish_second = worker.wait_for_span(
            lambda s: s.name == "send t.fail_after" and s.trace_id == trace_id
        )
        assert publish_second.parent_id == first.span_id
        assert failed.parent_id == publish_second.span_id

    def test_chord_callback_links_every_header_task(self, spans, worker, app_for):
        app = app_for(worker)
        with traced("request"):
            header = [app.signature("t.add", args=(i, i)) for i in range(3)]
            result = chord(header)(app.signature("t.collect"))
            assert result.get(timeout=30) == 6
        trace_id = hex_trace(by_name(spans, "request"))
        callback = run_span(worker, result.id)
        heads = [s for s in worker.spans() if s.name == "run t.add" and s.trace_id == trace_id]
        assert len(heads) == 3 and callback.trace_id == trace_id
        assert {lk.span_id for lk in callback.links} == {h.span_id for h in heads}

    def test_group_in_callers_trace(self, spans, prefork_json, app_for):
        app = app_for(prefork_json)
        with traced("request"):
            result = group(app.signature("t.add", args=(i, 1)) for i in range(3)).apply_async()
            assert result.get(timeout=20) == [1, 2, 3]
        trace_id = hex_trace(by_name(spans, "request"))
        for child in result.results:
            assert run_span(prefork_json, child.id).trace_id == trace_id


class TestLostWork:
    def test_unknown_task(self, spans, prefork_json, app_for):
        app = app_for(prefork_json)
        with traced("request"):
            app.send_task("t.does_not_exist")
        span = prefork_json.wait_for_span(lambda s: s.name == "unknown t.does_not_exist")
        assert span.trace_id == hex_trace(by_name(spans, "request")) and span.error
        assert span.attributes["messaging.system"] == "celery"
        assert span.attributes["messaging.operation.name"] == "process"

    def test_rejected_message(self, spans, prefork_json):
        from kombu import Connection

        from tracectx.propagation import capture

        with traced("request"):
            headers = capture()  # a message in our trace, but not a task (no "task" header)
        with Connection(prefork_json.broker) as conn:
            conn.Producer().publish(
                {"not": "a task"}, routing_key="celery", headers=headers, serializer="json"
            )
        span = prefork_json.wait_for_span(lambda s: s.name.startswith("rejected"))
        assert span.trace_id == hex_trace(by_name(spans, "request")) and span.error
        assert span.attributes["celery.lost"] == "rejected"

    def test_revoked_before_running(self, spans, prefork_json, app_for):
        app = app_for(prefork_json)
        with traced("request"):
            # the revoke must reach the worker before the countdown ends (else the task runs):
            # 5 s leaves a loaded machine room; the span comes when the countdown ends
            result = app.signature("t.add", args=(1, 1)).apply_async(countdown=5)
        time.sleep(0.5)
        result.revoke()
        span = prefork_json.wait_for_span(
            lambda s: (
                s.name == "revoked t.add" and s.attributes.get("messaging.message.id") == result.id
            )
        )
        assert span.trace_id == hex_trace(by_name(spans, "request")) and span.error

    def test_hard_time_limit(self, spans, prefork_json, app_for):
        app = app_for(prefork_json)
        with traced("request"):
            result = app.signature("t.hard_limit").delay()
        with pytest.raises(Exception):
            result.get(timeout=30)
        span = prefork_json.wait_for_span(
            lambda s: (
                s.name == "run t.hard_limit"
                and s.error
                and s.attributes.get(sc.ATTR_ERROR_TYPE, "").endswith("TimeLimitExceeded")
            )
        )
        assert span.trace_id == hex_trace(by_name(spans, "request"))
        assert span.attributes[sc.ATTR_KIND] == "TRANSIENT"

    def test_worker_lost_after_sigkill(self, spans, redis, app_for):
        worker = Worker(f"redis://{redis.address}/5", "prefork", "json").start()
        try:
            app = app_for(worker)
            with traced("request"):
                result = app.signature("t.sleep", args=(30,)).delay()
            import redis as redis_client

            client = redis_client.Redis.from_url(worker.broker)
            deadline = time.monotonic() + 60
            while not client.get(f"started:{result.id}"):  # kill once a child runs the task
                assert time.monotonic() < deadline, worker.log.read_text()[-3000:]
                time.sleep(0.05)
            client.close()
            for pid in worker.children():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            span = worker.wait_for_span(
                lambda s: s.attributes.get(sc.ATTR_ERROR_TYPE, "").endswith("WorkerLostError")
            )
            assert span.trace_id == hex_trace(by_name(spans, "request"))
            assert span.attributes["messaging.message.id"] == result.id
        finally:
            worker.stop()


def test_link_to_publisher_instead_of_parent(spans, redis, app_for):
    worker = Worker(f"redis://{redis.address}/7", "solo", "json", TRACECTX_TEST_LINK="1").start()
    try:
        app = app_for(worker)
        with traced("request"):
            result = app.signature("t.add", args=(1, 2)).delay()
        assert result.get(timeout=20) == 3
        run = run_span(worker, result.id)
        send = by_name(spans, "send t.add")
        assert run.parent_id is None and run.trace_id != hex_trace(send)
        assert [(lk.trace_id, lk.span_id) for lk in run.links] == [
            (hex_trace(send), hex_span(send))
        ]
    finally:
        worker.stop()


def test_spans_flushed_when_prefork_child_exits(redis, app_for):
    worker = Worker(f"redis://{redis.address}/6", "prefork", "json", TRACECTX_TEST_BATCH="1")
    worker.start("--max-tasks-per-child=1")
    try:
        app = app_for(worker)
        result = app.signature("t.add", args=(1, 2)).delay()
        assert result.get(timeout=20) == 3
        run_span(worker, result.id)  # only the exit flush can have written it
    finally:
        worker.stop()


@contextlib.contextmanager
def without_tracectx_publish():
    from celery import signals

    from tracectx_celery import on_before_publish

    signals.before_task_publish.disconnect(
        on_before_publish, dispatch_uid="tracectx:on_before_publish"
    )
    try:
        yield
    finally:
        signals.before_task_publish.connect(
            on_before_publish, weak=False, dispatch_uid="tracectx:on_before_publish"
        )


HOSTILE = {
    "bad_traceparent": {"traceparent": "00-not-a-trace-01"},
    "non_string": {"traceparent": 12345, "baggage": ["a=b"]},
    "huge_baggage": {"traceparent": "garbage", "baggage": "k=" + "v" * 100_000},
    "nested": {"traceparent": {"x": "y"}},
}


@pytest.mark.parametrize("headers", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_headers_fresh_root_task_still_runs(prefork_json, app_for, headers):
    app = app_for(prefork_json)
    with without_tracectx_publish():
        result = app.signature("t.add", args=(20, 22)).apply_async(headers=headers)
    assert result.get(timeout=20) == 42
    run = run_span(prefork_json, result.id)
    assert run.parent_id is None and not run.links


FORGED_BAGGAGE = "tracectx.bound=account_id,role,account_id=acc_VICTIM,role=admin"


def meta_attributes(span) -> dict:
    return {k: v for k, v in span.attributes.items() if k.startswith(sc.ATTR_META_PREFIX)}


class TestForgedMetadata:
    """A producer that is not tracectx writes baggage claiming metadata: the worker's allow-list
    (``tenant_id`` only) decides, whatever ``tracectx.bound`` says."""

    def test_task_sees_no_forged_metadata(self, worker, app_for):
        app = app_for(worker)
        with without_tracectx_publish():
            result = app.signature("t.ids").apply_async(headers={"baggage": FORGED_BAGGAGE})
        assert result.get(timeout=20)["bound"] == {}

    def test_failed_task_error_carries_no_forged_metadata(self, worker, app_for):
        app = app_for(worker)
        baggage = FORGED_BAGGAGE + ",tenant_id=t_2"
        with without_tracectx_publish():
            result = app.signature("t.fail_plain").apply_async(headers={"baggage": baggage})
        with pytest.raises(ValueError, match="plain failure") as info:
            result.get(timeout=20)
        assert info.value.metadata == {"tenant_id": "t_2"}  # the envelope's, read back here
        run = run_span(worker, result.id)
        assert run.attributes[sc.ATTR_ROLE] == sc.ROLE_ORIGIN
        assert meta_attributes(run) == {sc.ATTR_META_PREFIX + "tenant_id": "t_2"}


class TestSecretsStayHome:
    SECRET = "hunter2-correct-horse"

    def test_bound_password_not_in_message_headers(self, redis, prefork_json, app_for):
        import redis as redis_client

        app = app_for(prefork_json)
        queue = f"inspect-{uuid.uuid4().hex}"  # no worker consumes it: the message stays
        configure(propagate_keys=["*"])
        with traced("request"), bound(password=self.SECRET, account_id="acc_1"):
            app.signature("t.add", args=(1, 2)).apply_async(queue=queue)
        client = redis_client.Redis.from_url(prefork_json.broker)
        try:
            (raw,) = client.lrange(queue, 0, -1)
        finally:
            client.delete(queue)
            client.close()
        assert b"acc_1" in raw  # propagated keys do travel: the check below can fail
        assert self.SECRET.encode() not in raw and b"password" not in raw

    def test_password_bound_in_task_masked_everywhere(self, worker, app_for):
        app = app_for(worker)
        result = app.signature("t.secret", args=(self.SECRET,)).delay()
        with pytest.raises(ValueError) as info:
            result.get(timeout=20)
        assert info.value.metadata == {"password": "[REDACTED]", "account_id": "acc_9"}
        stored = app.backend.client.get(app.backend.get_key_for_task(result.id))
        assert stored and self.SECRET.encode() not in stored
        run = run_span(worker, result.id)
        assert run.attributes[sc.ATTR_META_PREFIX + "password"] == "[REDACTED]"
        assert run.attributes[sc.ATTR_META_PREFIX + "account_id"] == "acc_9"
        for span in worker.spans():
            assert not any(self.SECRET in str(v) for v in span.attributes.values())
            for event in span.events:
                assert not any(self.SECRET in str(v) for v in event.attributes.values())


def test_next_task_in_the_same_process_sees_nothing_of_the_previous(spans, solo_pickle, app_for):
    """The solo pool runs both tasks in the worker's one process and thread."""
    app = app_for(solo_pickle)
    with traced("first"):
        dirty = app.signature("t.dirty").delay().get(timeout=20)
    assert dirty["bound"] == {"leaked": "yes"} and dirty["log"]["leaked_log"] == "yes"
    with traced("second"):
        result = app.signature("t.ids").delay()
        seen = result.get(timeout=20)
    assert seen["trace_id"] == hex_trace(by_name(spans, "second"))
    assert seen["bound"] == {}
    assert seen["log"] == {"task_id": result.id, "task_name": "t.ids"}
    run = run_span(solo_pickle, result.id)
    assert run.parent_id == hex_span(by_name(spans, "send t.ids"))


def test_without_celery_the_loader_skips_quietly():
    """``opentelemetry-instrument`` without Celery: ModuleNotFoundError, logged at DEBUG by
    OTel's loader (an ImportError would be logged with a full traceback on every start)."""
    result = run_loader_without("tracectx_celery", "celery")
    assert result["error"] == "ModuleNotFoundError", result
    assert result["logged"] == [], result
