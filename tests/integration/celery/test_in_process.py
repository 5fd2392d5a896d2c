"""The handlers in one process (eager tasks): context and log bindings restored."""

from __future__ import annotations

import logging

import pytest
import structlog
from celery import Celery
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.helpers import by_name, current_ids
from tracectx import traced


@pytest.fixture
def eager_app(celery_instrumented):
    app = Celery("eager", set_as_current=False)
    app.conf.task_always_eager = True

    @app.task(name="e.ids", shared=False)
    def ids():
        return current_ids(), structlog.contextvars.get_contextvars()

    return app


def test_run_restores_context_and_log_bindings(spans, eager_app):
    structlog.contextvars.clear_contextvars()
    with traced("request"):
        before = current_ids()
        (inside, logvars) = eager_app.tasks["e.ids"].delay().get()
        assert current_ids() == before
    assert logvars["task_name"] == "e.ids"
    assert structlog.contextvars.get_contextvars() == {}
    run = by_name(spans, "run e.ids")
    assert inside[1] == format(run.context.span_id, "016x")


def test_global_retry_transient_retries_by_kind_only(celery_instrumented):
    from tracectx import ErrorKind, TracedError, new_error
    from tracectx_celery import options
    from tracectx_celery.autoretry import wrap_app
    from tracectx_celery.options import Options

    app = Celery("eager-retry", set_as_current=False)
    app.conf.task_always_eager = True
    calls = {"flaky": 0, "declined": 0}

    @app.task(name="e.flaky", shared=False, max_retries=5)
    def flaky():
        calls["flaky"] += 1
        if calls["flaky"] < 3:
            raise new_error(ErrorKind.TRANSIENT, "busy")
        return "ok"

    @app.task(name="e.declined", shared=False, max_retries=5)
    def declined():
        calls["declined"] += 1
        raise new_error(ErrorKind.BUSINESS, "no")

    @app.task(name="e.opted_out", shared=False, retry_transient=False)
    def opted_out():
        raise new_error(ErrorKind.TRANSIENT, "busy")

    options.set_options(Options(retry_transient=True, retry_backoff=0.0))
    try:
        wrap_app(app)
        app.finalize()  # what a worker does at start; tasks are wrapped then
        assert flaky.delay().get() == "ok" and calls["flaky"] == 3
        with pytest.raises(TracedError):
            declined.delay().get()
        assert calls["declined"] == 1
        with pytest.raises(TracedError):
            opted_out.delay().get()
    finally:
        options.set_options(Options())


@pytest.fixture
def reinstrumented():
    """Uninstrument the session's instrumentation for the test; put it back afterwards."""
    from tracectx_celery import instrument, uninstrument

    uninstrument()
    yield
    uninstrument()
    instrument()


def test_tracer_provider_honoured_and_tracer_named(spans, reinstrumented):
    import tracectx
    from tracectx_celery import instrument

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrument(tracer_provider=provider)
    app = Celery("eager-provider", set_as_current=False)
    app.conf.task_always_eager = True

    @app.task(name="e.add", shared=False)
    def add(x, y):
        return x + y

    assert add.delay(1, 2).get() == 3
    (run,) = exporter.get_finished_spans()
    assert run.name == "run e.add"
    assert (run.instrumentation_scope.name, run.instrumentation_scope.version) == (
        "tracectx_celery",
        tracectx.__version__,
    )
    assert not [s for s in spans.get_finished_spans() if s.name == "run e.add"]


def test_misspelt_option_refused_by_name(reinstrumented):
    from tracectx_celery import instrument, options

    app = Celery("eager-typo", set_as_current=False)
    with pytest.raises(TypeError, match="'retry_transiet'"):
        instrument(app, retry_transiet=True)
    instrument(retry_backoff=0.5)
    with pytest.raises(TypeError, match="'retry_transiet'"):  # also once instrumented
        instrument(app, retry_transiet=True)
    assert options.current().retry_backoff == 0.5


def test_uninstrument_undoes_its_classifier_registrations(reinstrumented):
    from celery.exceptions import SoftTimeLimitExceeded, WorkerLostError

    from tracectx import ErrorKind, classify, register_exception
    from tracectx_celery import instrument, uninstrument

    instrument()
    assert classify(SoftTimeLimitExceeded()) is ErrorKind.TRANSIENT
    assert classify(WorkerLostError()) is ErrorKind.TRANSIENT
    register_exception(WorkerLostError, ErrorKind.FATAL)  # the app's own choice since
    uninstrument()
    assert classify(SoftTimeLimitExceeded()) is ErrorKind.UNKNOWN
    assert classify(WorkerLostError()) is ErrorKind.FATAL


def test_backend_patches_keep_the_originals_and_uninstrument_mirrors_instrument(reinstrumented):
    """`Backend`'s hooks are `tracectx.patching` wrappers: doc, signature and ``__wrapped__``
    stay; uninstrument puts back the very functions that were in ``Backend.__dict__``."""
    import inspect

    from celery.backends.base import Backend
    from celery.beat import Scheduler

    from tracectx.patching import is_patched
    from tracectx_celery import instrument, uninstrument

    targets = [
        (Backend, "prepare_exception"),
        (Backend, "exception_to_python"),
        (Scheduler, "apply_async"),  # beat's dispatch
    ]
    before = {(owner, name): vars(owner)[name] for owner, name in targets}
    instrument()
    try:
        for owner, name in targets:
            original = before[owner, name]
            assert is_patched(owner, name) and vars(owner)[name].__wrapped__ is original
            assert getattr(owner, name).__doc__ == original.__doc__
            assert inspect.signature(getattr(owner, name)) == inspect.signature(original)
    finally:
        uninstrument()
    assert {(owner, name): vars(owner)[name] for owner, name in targets} == before
    assert not any(is_patched(owner, name) for owner, name in targets)


def test_plain_bind_in_eager_task_does_not_outlive_it(spans, eager_app):
    from tracectx import bind, get_bound

    @eager_app.task(name="e.dirty", shared=False)
    def dirty():
        bind(leaked="yes")
        structlog.contextvars.bind_contextvars(leaked_log="yes")
        return get_bound()

    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request="r-1")
    try:
        with traced("request"):
            before = current_ids()
            assert dirty.delay().get() == {"leaked": "yes"}
            assert current_ids() == before and get_bound() == {}
            assert structlog.contextvars.get_contextvars() == {"request": "r-1"}
    finally:
        structlog.contextvars.clear_contextvars()


def test_log_values_changed_or_unbound_in_a_task_are_put_back(spans, eager_app):
    @eager_app.task(name="e.rebind", shared=False)
    def rebind():
        seen = structlog.contextvars.get_contextvars()
        structlog.contextvars.bind_contextvars(request="r-2")
        structlog.contextvars.unbind_contextvars("user")
        return seen

    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request="r-1", user="u-1", task_id="outer")
    try:
        seen = rebind.delay().get()
        assert seen["task_id"] != "outer" and seen["task_name"] == "e.rebind"
        assert structlog.contextvars.get_contextvars() == {
            "request": "r-1",
            "user": "u-1",
            "task_id": "outer",
        }
    finally:
        structlog.contextvars.clear_contextvars()


def nested(depth: int) -> list:
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize("field", ["v", "metadata", "origin", None])
def test_deeply_nested_envelope_gives_celerys_own_exception(celery_instrumented, caplog, field):
    """What a result backend's decoder hands over (pickle and many JSON decoders decode any
    nesting without recursion): the caller gets Celery's ValueError, never a RecursionError."""
    caplog.set_level(logging.DEBUG, logger="tracectx")
    app = Celery("results", backend="cache+memory://", set_as_current=False)
    envelope = {"v": 1, "message": "m", "error_id": "ab"}
    if field is None:
        envelope = nested(5000)
    else:
        envelope[field] = nested(5000)
    stored = {
        "exc_type": "ValueError",
        "exc_message": ["from the worker"],
        "exc_module": "builtins",
        "tracectx": envelope,
    }
    rebuilt = app.backend.exception_to_python(stored)
    assert type(rebuilt) is ValueError and rebuilt.args == ("from the worker",)
    assert not hasattr(rebuilt, "_tracectx_error_id")
    assert "celery: refused inbound data (corrupt_envelope" in caplog.text


def test_refused_headers_counted_by_fixed_reason(caplog):
    from tracectx_celery.carrier import MAX_VALUE, context_from

    caplog.set_level(logging.DEBUG, logger="tracectx")
    context_from({"traceparent": 12345})
    context_from({"traceparent": "00-" + "a" * MAX_VALUE})
    refused = [r.getMessage() for r in caplog.records if "refused inbound" in r.getMessage()]
    assert any("(wrong_type_header: 'traceparent')" in m for m in refused), refused
    assert any("(oversized_header: 'traceparent')" in m for m in refused), refused


def test_eager_run_span_names_its_queue_like_a_workers_run(spans, celery_instrumented):
    """An eager run reports the queue its task routes to, as a worker's run span does."""
    app = Celery("eager-routes", set_as_current=False)
    app.conf.task_always_eager = True
    app.conf.task_routes = {"e.routed": {"queue": "math"}}

    @app.task(name="e.routed", shared=False)
    def routed():
        return 1

    @app.task(name="e.default", shared=False)
    def default():
        return 2

    assert routed.delay().get() == 1 and default.delay().get() == 2
    run = by_name(spans, "run e.routed").attributes
    assert run["messaging.destination.name"] == "math"
    assert run["messaging.operation.name"] == "run"
    assert by_name(spans, "run e.default").attributes["messaging.destination.name"] == "celery"
