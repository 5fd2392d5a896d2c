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
