"""The stream's outputs land where any other Kafka writer of the same key would put them: on a
real broker, every key goes to the partition kafka-python's default producer (murmur2, as the
Java client) picks, so a compacted paths topic and a group of instances of two versions during
an upgrade agree."""

from __future__ import annotations

import uuid

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from tracectx_stream.delivery import Outbox, OutputProducer, producer_config
from tracectx_stream.stats import StreamStats

pytestmark = pytest.mark.integration


def test_keys_land_where_the_default_producer_puts_them(bootstrap, make_topic) -> None:
    ours_topic = make_topic(f"p{uuid.uuid4().hex[:6]}", partitions=7)
    theirs_topic = make_topic(f"q{uuid.uuid4().hex[:6]}", partitions=7)
    keys = [f"{uuid.uuid4().hex}/{n:016x}".encode() for n in range(60)] + [b"", b"a", b"ab"]
    stats = StreamStats()
    producer = OutputProducer(producer_config(bootstrap, "partitioner-test"))
    outbox = Outbox(producer, stats)
    default = KafkaProducer(bootstrap_servers=bootstrap)
    try:
        theirs = {key: default.send(theirs_topic, key=key, value=b"1") for key in keys}
        default.flush(30)
        for key in keys:
            outbox.send(ours_topic, key, b"1", key)
        assert outbox.settle(timeout_s=30) == set()
    finally:
        producer.close(10)
        default.close()
    assert stats.produced[ours_topic] == len(keys)
    reader = KafkaConsumer(bootstrap_servers=bootstrap, consumer_timeout_ms=3000)
    reader.assign([TopicPartition(ours_topic, p) for p in range(7)])
    reader.seek_to_beginning()
    ours = {record.key or b"": record.partition for record in reader}
    reader.close()
    assert ours == {key: future.get(10).partition for key, future in theirs.items()}
