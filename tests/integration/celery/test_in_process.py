"""The handlers in one process (eager tasks): context and log bindings restored."""

from __future__ import annotations

import pytest
import structlog
from celery import Celery

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
