"""The Celery app of the tests, imported by the test process and by real worker processes.

The worker reads its settings from the environment (see `conftest.py`) and writes its spans,
one OTLP JSON-lines file per process, into ``TRACECTX_TEST_SPANS``.
"""

from __future__ import annotations

import os
import time
from typing import Any

from celery import Celery

from tracectx import ErrorKind, TracedError, new_error

TRANSIENT_FAILURES = 2


class Unpicklable(Exception):
    """Holds a lock: neither pickle nor JSON can carry it."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        import threading

        self.lock = threading.Lock()


class Expected(Exception):
    pass


class PaymentDeclined(TracedError):
    def __init__(self, message: str, *, amount: int = 0, **kwargs: Any) -> None:
        super().__init__(message, kind=ErrorKind.BUSINESS, code="E42", **kwargs)
        self.amount = amount


def make_app(broker: str, serializer: str = "json") -> Celery:
    app = Celery("tracectx_tests", broker=broker, backend=broker, set_as_current=False)
    app.conf.update(
        task_serializer=serializer,
        result_serializer=serializer,
        accept_content=[serializer],
        result_accept_content=[serializer],
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        task_acks_late=True,
        task_reject_on_worker_lost=False,
        worker_prefetch_multiplier=1,
        result_expires=600,
    )

    def task(**options: Any) -> Any:
        return app.task(shared=False, **options)

    @task(name="t.add")
    def add(x: int, y: int) -> int:
        return x + y

    @task(name="t.business")
    def business(account_id: str) -> None:
        raise new_error(
            ErrorKind.BUSINESS,
            "card declined",
            code="E42",
            account_id=account_id,
            card_number="4111111111111111",
        )

    @task(name="t.declined")
    def declined() -> None:
        raise PaymentDeclined("declined", amount=5, metadata={"account_id": "acc_7"})

    @task(name="t.flaky", bind=True, retry_transient=True, max_retries=4)
    def flaky(self: Any, key: str) -> str:
        # fails TRANSIENT_FAILURES times (counted per key in Redis), then succeeds
        count = self.backend.client.incr(f"flaky:{key}")
        if count <= TRANSIENT_FAILURES:
            raise new_error(ErrorKind.TRANSIENT, f"flaky {count}", code="T1")
        return f"ok after {count}"

    @task(name="t.business_no_retry", retry_transient=True, max_retries=4)
    def business_no_retry() -> None:
        raise new_error(ErrorKind.BUSINESS, "no", code="B1")

    @task(name="t.manual_retry", bind=True, max_retries=2)
    def manual_retry(self: Any) -> int:
        if self.request.retries < 2:
            raise self.retry(exc=ConnectionError("down"), countdown=0.05)
        return self.request.retries

    @task(name="t.expected", throws=(Expected,))
    def expected() -> None:
        raise Expected("not found")

    @task(name="t.unpicklable")
    def unpicklable() -> None:
        raise Unpicklable("holds a lock")

    @task(name="t.sleep", bind=True)
    def sleep(self: Any, seconds: float) -> str:
        self.backend.client.set(f"started:{self.request.id}", 1, ex=600)
        time.sleep(seconds)
        return "slept"

    @task(name="t.hard_limit", time_limit=1)
    def hard_limit() -> None:
        time.sleep(10)

    @task(name="t.collect")
    def collect(values: list[int]) -> int:
        return sum(values)

    @task(name="t.fail_after")
    def fail_after(value: int) -> None:
        raise new_error(ErrorKind.FATAL, f"broken at {value}", code="F1")

    @task(name="t.fail_plain")
    def fail_plain() -> None:
        raise ValueError("plain failure")

    @task(name="t.secret")
    def secret(password: str) -> None:
        from tracectx import bind

        bind(password=password, account_id="acc_9")
        raise ValueError("failed with a secret bound")

    @task(name="t.dirty")
    def dirty() -> dict[str, Any]:
        """Leaves everything it binds bound: nothing of it may reach the next task."""
        import structlog
        from opentelemetry import context as otel_context
        from opentelemetry import trace

        from tracectx import bind

        bind(leaked="yes")
        structlog.contextvars.bind_contextvars(leaked_log="yes", task_name="overwritten")
        other = trace.SpanContext(0xAB, 0xCD, is_remote=False, trace_flags=trace.TraceFlags(1))
        otel_context.attach(trace.set_span_in_context(trace.NonRecordingSpan(other)))
        return ids()

    @task(name="t.ids")
    def ids() -> dict[str, Any]:
        import structlog
        from opentelemetry import trace

        from tracectx import get_bound

        ctx = trace.get_current_span().get_span_context()
        return {
            "trace_id": format(ctx.trace_id, "032x"),
            "bound": get_bound(),
            "log": structlog.contextvars.get_contextvars(),
        }

    return app


class PerProcessExporter:
    """OTLP JSON lines into ``spans-<pid>.jsonl``: prefork children get their own file."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.by_pid: dict[int, Any] = {}

    def export(self, spans: Any) -> Any:
        from tracectx.file_exporter import OTLPJsonFileExporter

        pid = os.getpid()
        if pid not in self.by_pid:
            path = os.path.join(self.directory, f"spans-{pid}.jsonl")
            self.by_pid[pid] = OTLPJsonFileExporter(path)
        return self.by_pid[pid].export(spans)

    def shutdown(self) -> None:
        for exporter in self.by_pid.values():
            exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def _setup_tracing() -> None:
    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    exporter: Any = PerProcessExporter(os.environ["TRACECTX_TEST_SPANS"])
    provider = TracerProvider(resource=Resource.create({"service.name": "worker"}))
    if os.environ.get("TRACECTX_TEST_BATCH"):  # only force_flush writes: tests the exit flush
        provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=3_600_000))
    else:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)


def beat_schedule(spec: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``beat_schedule`` from the tests' JSON (``TRACECTX_TEST_BEAT``): per entry a task, a
    period in seconds, args, an optional queue, and ``unserializable`` (args JSON refuses)."""
    out = {}
    for name, entry in spec.items():
        args = [{1, 2}] if entry.get("unserializable") else entry.get("args", [])
        options = {"queue": entry["queue"]} if entry.get("queue") else {}
        out[name] = {
            "task": entry["task"],
            "schedule": float(entry["every"]),
            "args": args,
            "options": options,
        }
    return out


if "TRACECTX_TEST_BROKER" in os.environ:  # imported by a worker or beat
    import json

    from celery.signals import beat_init, worker_ready

    from tracectx_celery import instrument

    @worker_ready.connect
    def _ready(**_: Any) -> None:  # the tests wait for this file rather than pinging
        open(os.path.join(os.environ["TRACECTX_TEST_SPANS"], "ready"), "w").close()

    beat_init.connect(_ready)

    _setup_tracing()
    app = make_app(
        os.environ["TRACECTX_TEST_BROKER"], os.environ.get("TRACECTX_TEST_SERIALIZER", "json")
    )
    if os.environ.get("TRACECTX_TEST_BEAT"):
        app.conf.beat_schedule = beat_schedule(json.loads(os.environ["TRACECTX_TEST_BEAT"]))
    instrument(
        app,
        retry_backoff=0.05,
        retry_backoff_max=0.2,
        link_to_publisher=bool(os.environ.get("TRACECTX_TEST_LINK")),
    )
