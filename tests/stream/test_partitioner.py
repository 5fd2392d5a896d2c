"""The stream's key partitioner hashes as Kafka does: the same murmur2 as kafka-python's (for any
bytes), and on a real broker every key lands on the partition the default producer picks."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kafka import KafkaProducer
from kafka.partitioner.default import murmur2 as kafka_murmur2

from tracectx_stream.delivery import producer_config
from tracectx_stream.partitioner import murmur2


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300))
def test_murmur2_is_kafkas(data: bytes) -> None:
    assert murmur2(data) == kafka_murmur2(data)


@pytest.mark.integration
def test_keys_land_where_the_default_producer_puts_them(bootstrap, make_topic) -> None:
    topic = make_topic(f"p{uuid.uuid4().hex[:6]}", partitions=7)
    keys = [f"{uuid.uuid4().hex}/{n:016x}".encode() for n in range(60)] + [b"", b"a", b"ab"]
    ours = KafkaProducer(**producer_config(bootstrap, "partitioner-test"))
    default = KafkaProducer(bootstrap_servers=bootstrap)
    try:
        for key in keys:
            mine = ours.send(topic, key=key, value=b"1").get(timeout=30).partition
            theirs = default.send(topic, key=key, value=b"1").get(timeout=30).partition
            assert mine == theirs, key
    finally:
        ours.close()
        default.close()
