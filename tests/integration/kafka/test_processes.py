"""Across processes and broker restarts: the consumer still sees the producer's trace."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError

from tests.helpers import all_named, current_ids, hex_trace
from tests.integration.kafka.test_consumer import consumer_for
from tracectx import configure, get_bound, traced
from tracectx_demo.embedded import tansu_broker
from tracectx_kafka import TracedProducer

pytestmark = pytest.mark.integration


def test_producer_in_another_process(spans, bootstrap, make_topic):
    """Bound metadata crosses only as both sides configure it: the producer process lists the
    key in TRACECTX_PROPAGATE_KEYS, this consumer trusts it with baggage_allowlist."""
    topic = make_topic()
    configure(baggage_allowlist=["order"])
    out = subprocess.run(
        [sys.executable, "-m", "tests.integration.kafka.producer_proc", bootstrap, topic, "3"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={**os.environ, "TRACECTX_PROPAGATE_KEYS": "order"},
    )
    sent = out.stdout.split()
    consumer = consumer_for(bootstrap, topic)
    seen = []
    for _record in consumer:
        seen.append((current_ids()[0], get_bound()["order"]))
        if len(seen) == 3:
            break
    consumer.close()
    assert seen == [(sent[i], f"o{i}") for i in range(3)]
    assert len(set(sent)) == 3


def test_broker_restart_mid_stream(spans):
    service = tansu_broker().start()
    bootstrap = f"127.0.0.1:{service.port}"

    def create_topic() -> None:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        try:
            admin.create_topics([NewTopic("stream", num_partitions=1, replication_factor=1)])
        except TopicAlreadyExistsError:  # a reconnecting client's metadata request made it
            pass
        admin.close()

    try:
        create_topic()
        # memory storage forgets producer ids on restart: idempotence would fail every send after it
        producer = TracedProducer(
            bootstrap_servers=bootstrap, reconnect_backoff_max_ms=200, enable_idempotence=False
        )
        consumer = consumer_for(bootstrap, "stream", reconnect_backoff_max_ms=200)
        seen: list[str] = []

        def send_and_read(name: str) -> None:
            with traced(name):
                producer.send("stream", name.encode(), partition=0).get(20)
            record = next(consumer)
            assert record.value == name.encode()
            seen.append(current_ids()[0])

        send_and_read("before")
        service.restart()  # memory storage: the topic is gone, connections are dropped
        create_topic()
        consumer.seek_to_beginning()  # the new log starts at 0 again, below our position
        send_and_read("after")
        consumer.close()
        producer.close()
    finally:
        service.stop()
    expected = [hex_trace(all_named(spans, n)[0]) for n in ("before", "after")]
    assert seen == expected
