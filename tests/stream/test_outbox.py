"""The outputs' bookkeeping on a shared confluent-kafka producer: a stage waits for its own
records only, a producer that failed for good stops the instance instead of being retried
forever, and closing with the broker gone does not wait out the delivery timeout."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from tracectx_stream.delivery import Outbox, OutputProducer, ProducerFailed, producer_config
from tracectx_stream.stats import StreamStats
from tracectx_stream.supervise import StageFailed, StageHealth, supervise

NOWHERE = "127.0.0.1:1"  # nothing listens: records stay queued until their delivery timeout


def test_a_stage_settles_its_own_records_not_the_other_stages() -> None:
    producer = OutputProducer(producer_config(NOWHERE, "settle-test"))
    try:
        mine, theirs = Outbox(producer, StreamStats()), Outbox(producer, StreamStats())
        theirs.send("paths", b"k", b"v", "trace-b")  # unanswered: the broker is not there
        started = time.monotonic()
        assert mine.settle(timeout_s=5) == set()
        assert time.monotonic() - started < 1
        with pytest.raises(TimeoutError):
            theirs.settle(timeout_s=0.5)
    finally:
        producer.close(1)


def test_closing_with_the_broker_gone_drops_what_is_queued_within_the_timeout() -> None:
    producer = OutputProducer(producer_config(NOWHERE, "close-test"))
    stats = StreamStats()
    outbox = Outbox(producer, stats)
    outbox.send("paths", b"k", b"v", "trace-a")
    started = time.monotonic()
    assert producer.close(1) == 1
    assert time.monotonic() - started < 10  # not the two-minute delivery timeout
    assert stats.produce_errors["paths"] == 1  # purged: counted, its trace not committed past


class _FatalClient:
    """A producer client whose idempotent state is lost: every produce raises ``_FATAL``."""

    def produce(self, *args: Any, **kwargs: Any) -> None:
        raise KafkaException(KafkaError(KafkaError._FATAL, "fenced", fatal=True))

    def poll(self, timeout: float = 0) -> int:
        return 0


def test_a_fatal_producer_error_stops_the_instance_instead_of_retrying() -> None:
    producer = OutputProducer(producer_config(NOWHERE, "fatal-test"))
    real, producer.client = producer.client, _FatalClient()
    producer._error(KafkaError(KafkaError._FATAL, "fenced", fatal=True))  # as error_cb says
    outbox = Outbox(producer, StreamStats())
    with pytest.raises(ProducerFailed):
        outbox.send("paths", b"k", b"v", "trace-a")

    class Stage:
        name = "assemble"
        steps = 0

        def open(self) -> None: ...
        def close(self) -> None: ...
        def abandon(self) -> None: ...

        def step(self) -> None:
            Stage.steps += 1
            outbox.send("paths", b"k", b"v", "trace-a")

    with pytest.raises(StageFailed):  # at once: not after give_up_s of reopening
        supervise(Stage(), StageHealth("assemble"), threading.Event(), give_up_s=300)
    assert Stage.steps == 1
    producer.client = real
    producer.close(1)


def test_librdkafka_lines_of_one_kind_are_logged_once_per_interval(caplog) -> None:
    """A broker down: librdkafka's reconnect lines (its facility ``FAIL``) come through once
    per interval, the next one saying how many were held back; other kinds are not held."""
    from tracectx_stream.delivery import KAFKA_LOG, OncePer

    KAFKA_LOG.filters.clear()
    KAFKA_LOG.addFilter(OncePer(interval_s=0.3))
    try:
        with caplog.at_level("INFO", logger=KAFKA_LOG.name):
            for _ in range(100):
                KAFKA_LOG.error("%s [%s] %s", "FAIL", "rdkafka#producer-1", "Connection refused")
            KAFKA_LOG.warning("%s [%s] %s", "REQTMOUT", "rdkafka#producer-1", "Timed out")
            time.sleep(0.35)
            KAFKA_LOG.error("%s [%s] %s", "FAIL", "rdkafka#producer-1", "Connection refused")
    finally:
        KAFKA_LOG.filters.clear()
        KAFKA_LOG.addFilter(OncePer())
    lines = [r.getMessage() for r in caplog.records if r.name == KAFKA_LOG.name]
    assert len(lines) == 3
    assert lines[0] == "FAIL [rdkafka#producer-1] Connection refused"
    assert lines[1].startswith("REQTMOUT")
    assert lines[2].startswith("FAIL") and "(99 like it in the last" in lines[2]


def test_a_real_producer_logs_an_unreachable_broker_through_the_filter(caplog) -> None:
    with caplog.at_level("DEBUG", logger="tracectx.stream.kafka"):
        producer = OutputProducer(producer_config(NOWHERE, "log-test"))
        outbox = Outbox(producer, StreamStats())
        outbox.send("paths", b"k", b"v", "trace-a")
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            producer.client.poll(0.1)
        producer.close(0.5)
    fails = [r for r in caplog.records if r.name == "tracectx.stream.kafka"]
    assert fails, "librdkafka's lines reach logging"
    assert len(fails) <= 6  # a few kinds, once each in 3 s (unfiltered: dozens)
