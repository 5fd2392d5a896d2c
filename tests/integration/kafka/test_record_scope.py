"""A record's process span, once ended, leaves the context as it was before the record —
whatever the loop body attached on top (a plain ``bind()``, the README's usage): nothing of one
record (span, bound metadata) reaches the next record, a later poll or the app's next spans."""

from __future__ import annotations

import pytest

from tests.helpers import all_named, current_ids
from tests.integration.kafka.test_consumer import consumer_for, poll_until, produce
from tracectx import ErrorKind, bind, get_bound, new_error, traced
from tracectx_kafka import process_record, traced_records

pytestmark = pytest.mark.integration


def handle(record) -> None:
    bind(order_id=record.value.decode())  # never undone: plain bind() in the loop body


def assert_as_before(spans, before: tuple[str, str]) -> None:
    """The app's span is current again, with only the app's own metadata."""
    assert current_ids() == before
    assert get_bound() == {"request": "r1"}
    with traced("after"):
        assert new_error(ErrorKind.BUSINESS, "later").metadata == {"request": "r1"}
    assert format(all_named(spans, "after")[-1].parent.span_id, "016x") == before[1]


def assert_next_poll_under_app(spans, consumer, bootstrap, topic, before) -> None:
    produce(bootstrap, topic, 1, name="late")
    poll_until(consumer, 1)
    last_poll = all_named(spans, f"poll {topic}")[-1]
    assert format(last_poll.parent.span_id, "016x") == before[1]


def test_iteration_to_the_end(spans, bootstrap, make_topic):
    topic = make_topic()
    produce(bootstrap, topic, 2)
    consumer = consumer_for(bootstrap, topic)
    with traced("app"):
        bind(request="r1")
        before = current_ids()
        for record in consumer:
            handle(record)
            if record.offset == 1:  # the last: the loop ends by itself a second later
                consumer.config["consumer_timeout_ms"] = 1000  # (the first may take longer)
        assert_as_before(spans, before)
        assert_next_poll_under_app(spans, consumer, bootstrap, topic, before)
        consumer.close()
    process = all_named(spans, f"process {topic}")
    assert len(process) == 2
    assert all(p.parent.span_id != process[0].context.span_id for p in process)


def test_break_then_poll_and_close(spans, bootstrap, make_topic):
    topic = make_topic()
    produce(bootstrap, topic, 3)
    consumer = consumer_for(bootstrap, topic)
    with traced("app"):
        bind(request="r1")
        before = current_ids()
        for record in consumer:
            handle(record)
            if record.offset == 1:
                break
        assert_next_poll_under_app(spans, consumer, bootstrap, topic, before)  # ends record 1
        assert_as_before(spans, before)
        for record in consumer:
            handle(record)
            break
        consumer.close()
        assert_as_before(spans, before)
    assert len(all_named(spans, f"process {topic}")) == 3


def test_poll_and_traced_records(spans, bootstrap, make_topic):
    topic = make_topic()
    produce(bootstrap, topic, 3)
    consumer = consumer_for(bootstrap, topic)
    with traced("app"):
        bind(request="r1")
        before = current_ids()
        seen = []
        for record in traced_records(poll_until(consumer, 3), consumer):
            seen.append(get_bound().get("order_id"))
            handle(record)
        assert seen == [None, None, None]  # no record saw the one before it
        assert_as_before(spans, before)
        assert_next_poll_under_app(spans, consumer, bootstrap, topic, before)
        produce(bootstrap, topic, 2, name="more")
        for record in traced_records(poll_until(consumer, 2), consumer):
            handle(record)
            break  # the generator is closed here: its finally ends the span
        assert_as_before(spans, before)
        consumer.close()


def test_process_record(spans, bootstrap, make_topic):
    topic = make_topic()
    produce(bootstrap, topic, 1)
    consumer = consumer_for(bootstrap, topic)
    with traced("app"):
        bind(request="r1")
        before = current_ids()
        (record,) = next(iter(poll_until(consumer, 1).values()))
        with process_record(record):
            handle(record)
        assert_as_before(spans, before)
        with pytest.raises(ValueError), process_record(record):
            handle(record)
            raise ValueError("bad")
        assert_as_before(spans, before)
        consumer.close()


def test_close_ends_the_open_record(spans, bootstrap, make_topic):
    topic = make_topic()
    produce(bootstrap, topic, 2)
    consumer = consumer_for(bootstrap, topic)
    with traced("app"):
        bind(request="r1")
        before = current_ids()
        handle(next(consumer))
        consumer.close()
        assert_as_before(spans, before)
    assert len(all_named(spans, f"process {topic}")) == 1


def test_closed_from_another_thread(spans, bootstrap, make_topic, caplog):
    """The span ends; neither thread's context is touched by the other (and nothing is logged
    about a context that cannot be detached there)."""
    import threading

    topic = make_topic()
    produce(bootstrap, topic, 1)
    consumer = consumer_for(bootstrap, topic)
    worker = threading.Thread(target=lambda: handle(next(consumer)))
    with traced("app"):
        before = current_ids()
        worker.start()
        worker.join(30)
        consumer.close()
        assert current_ids() == before
    assert len(all_named(spans, f"process {topic}")) == 1
    assert "Failed to detach" not in caplog.text
