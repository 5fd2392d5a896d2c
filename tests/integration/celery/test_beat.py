"""Celery beat through a real ``celery beat`` process, real workers and redis-server: each
scheduled run is a trace of its own, and failed, unpublishable and missed runs show."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from tests.integration.celery.conftest import Beat, Worker
from tracectx import semconv as sc
from tracectx.viz.model import Span
from tracectx_celery.schedule import ATTR_ENTRY, ATTR_LATE_S, EVENT_LATE, MISSED_REASON
from tracectx_demo.embedded import Service

pytestmark = pytest.mark.integration


def wait_for(
    source: Worker, predicate: Callable[[list[Span]], bool], what: str, timeout: float = 30.0
) -> list[Span]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        spans = source.spans()
        if predicate(spans):
            return spans
        time.sleep(0.2)
    names = sorted({s.name for s in source.spans()})
    raise AssertionError(f"{what}: have {names}\n{source.log.read_text()[-3000:]}")


def named(spans: list[Span], name: str) -> list[Span]:
    return [s for s in spans if s.name == name]


@pytest.fixture
def beat_for(redis: Service) -> Iterator[Callable[..., Beat]]:
    started: list[Beat] = []

    def start(broker: str, schedule: dict[str, dict[str, object]]) -> Beat:
        beat = Beat(broker, schedule).start()
        started.append(beat)
        return beat

    yield start
    for beat in started:
        beat.stop()


def test_each_scheduled_run_is_its_own_trace_named_by_its_entry(prefork_json, beat_for):
    beat = beat_for(
        prefork_json.broker,
        {
            "add-every-second": {"task": "t.add", "every": 1.0, "args": [2, 3]},
            "fail-every-second": {"task": "t.fail_plain", "every": 1.0},
        },
    )

    def runs(spans: list[Span], task: str) -> list[Span]:
        return [s for s in named(spans, f"run {task}") if ATTR_ENTRY in s.attributes]

    worker_spans = wait_for(
        prefork_json,
        lambda spans: len(runs(spans, "t.add")) >= 2 and runs(spans, "t.fail_plain"),
        "two scheduled t.add runs and a failed t.fail_plain run",
    )
    beat.stop()
    beat_spans = beat.spans()
    schedules = {s.attributes.get("messaging.message.id"): s for s in beat_spans}
    sends = {s.span_id: s for s in beat_spans if s.name.startswith("send ")}

    adds = runs(worker_spans, "t.add")[:2]
    for run in adds:
        assert run.attributes[ATTR_ENTRY] == "add-every-second"
        dispatch = schedules[run.attributes["messaging.message.id"]]
        assert dispatch.name == "schedule add-every-second"
        assert dispatch.parent_id is None  # a trace of its own, not the beat process's
        assert dispatch.attributes[ATTR_ENTRY] == "add-every-second"
        assert not dispatch.error
        send = sends[run.parent_id]  # run <- send <- schedule, one trace
        assert send.parent_id == dispatch.span_id and send.attributes[ATTR_ENTRY]
        assert run.trace_id == send.trace_id == dispatch.trace_id
    assert adds[0].trace_id != adds[1].trace_id  # every run its own trace

    (failed, *_) = runs(worker_spans, "t.fail_plain")
    assert failed.error and failed.attributes[sc.ATTR_ROLE] == sc.ROLE_ORIGIN
    assert failed.attributes[ATTR_ENTRY] == "fail-every-second"
    dispatch = schedules[failed.attributes["messaging.message.id"]]
    assert dispatch.name == "schedule fail-every-second" and failed.trace_id == dispatch.trace_id

    # runs a worker started in time are not reported missed, nor late
    assert not [s for s in beat_spans if s.name.startswith("missed ")]
    assert not [s for s in worker_spans if ATTR_LATE_S in s.attributes]


def test_unpublishable_and_missed_runs_are_visible(redis, beat_for):
    broker = f"redis://{redis.address}/8"
    beat = beat_for(
        broker,
        {
            # routed to a queue no worker consumes yet: each run is missed
            "nobody-home": {"task": "t.add", "every": 1.0, "args": [1, 1], "queue": "later"},
            # JSON cannot carry a set: beat cannot publish this entry
            "unsendable": {"task": "t.add", "every": 1.0, "unserializable": True},
        },
    )
    spans = wait_for(
        beat,
        lambda spans: named(spans, "missed nobody-home") and named(spans, "schedule unsendable"),
        "a missed run and an unpublishable dispatch",
    )
    beat.stop()
    spans = beat.spans()
    dispatches = {s.span_id: s for s in named(spans, "schedule nobody-home")}

    (missed, *_) = named(spans, "missed nobody-home")
    assert missed.error and missed.attributes["celery.lost"] == MISSED_REASON
    assert missed.attributes[ATTR_ENTRY] == "nobody-home"
    dispatch = dispatches[missed.parent_id]  # in the trace of the run it reports
    assert missed.trace_id == dispatch.trace_id
    assert missed.attributes["messaging.message.id"] == dispatch.attributes["messaging.message.id"]

    unsent = named(spans, "schedule unsendable")[0]
    assert unsent.error and unsent.parent_id is None
    assert unsent.attributes[sc.ATTR_ERROR_TYPE].endswith("SchedulingError")
    assert "exception" in [e.name for e in unsent.events]
    publish = [s for s in named(spans, "send t.add") if s.parent_id == unsent.span_id]
    assert all(s.error for s in publish)  # a publish that failed is ended with its error
    assert not named(spans, "missed unsendable")  # nothing was sent, so nothing was missed

    # a worker that comes up later runs the backlog: those runs say they missed their slot
    worker = Worker(broker, "solo", "json").start("-Q", "later")
    try:
        task_id = missed.attributes["messaging.message.id"]
        late = worker.wait_for_span(lambda s: s.attributes.get("messaging.message.id") == task_id)
        assert late.trace_id == dispatch.trace_id and late.attributes[ATTR_LATE_S] > 0
        assert EVENT_LATE in [e.name for e in late.events]
        assert late.attributes[ATTR_ENTRY] == "nobody-home"
    finally:
        worker.stop()
