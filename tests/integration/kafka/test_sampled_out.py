"""Span mode on sampled-out work: under a parent nobody records (ParentBased drops its children),
a send makes no span and propagates that parent, and a record from such a producer gets no
process span — its producer's context is current instead, as in context mode. Sampled records
still get their spans."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from kafka import KafkaConsumer, TopicPartition
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from tests.helpers import all_named, current_ids
from tests.integration.kafka.test_consumer import ITERATION_TIMEOUT_MS
from tracectx import traced
from tracectx_kafka import TracedConsumer, TracedProducer

pytestmark = pytest.mark.integration

UNSAMPLED = SpanContext(0xABC, 0xDEF, is_remote=False, trace_flags=TraceFlags(0))
IDS = (f"{0xABC:032x}", f"{0xDEF:016x}")
TRACEPARENT = f"00-{IDS[0]}-{IDS[1]}-00".encode()


@pytest.fixture
def unsampled() -> Iterator[None]:
    with trace.use_span(NonRecordingSpan(UNSAMPLED)):
        yield


def traceparents(headers) -> list[bytes]:
    return [v for k, v in headers or [] if k == "traceparent"]


def test_kafka_python_send_and_process_make_no_span_when_sampled_out(spans, bootstrap, make_topic):
    topic = make_topic()
    producer = TracedProducer(bootstrap_servers=bootstrap)  # span mode
    with trace.use_span(NonRecordingSpan(UNSAMPLED)):
        producer.send(topic, b"out")
    with traced("sampled"):
        producer.send(topic, b"in")
    producer.flush(10)
    producer.close()
    assert [s.name for s in spans.get_finished_spans()] == [f"send {topic}", "sampled"]
    plain = KafkaConsumer(
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        consumer_timeout_ms=ITERATION_TIMEOUT_MS,
    )
    plain.assign([TopicPartition(topic, 0)])
    raw = [r.headers for _, r in zip(range(2), plain, strict=False)]
    plain.close()
    assert traceparents(raw[0]) == [TRACEPARENT]  # the unsampled parent, propagated

    spans.clear()
    consumer = TracedConsumer(
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        consumer_timeout_ms=ITERATION_TIMEOUT_MS,
    )
    consumer.assign([TopicPartition(topic, 0)])
    seen = []
    for record in consumer:
        seen.append((record.value, current_ids(), trace.get_current_span().is_recording()))
        if len(seen) == 2:
            break
    consumer.close()
    assert seen[0] == (b"out", IDS, False)  # the producer's context, no span of its own
    assert seen[1][0] == b"in" and seen[1][2]  # a sampled record: its process span, current
    assert len(all_named(spans, f"process {topic}")) == 1


def test_confluent_send_and_process_make_no_span_when_sampled_out(
    spans, bootstrap, make_topic, unsampled
):
    confluent = pytest.importorskip("tracectx_kafka.confluent")
    from confluent_kafka import TopicPartition as CTopicPartition

    topic = make_topic()
    producer = confluent.TracedProducer({"bootstrap.servers": bootstrap})  # span mode
    producer.produce(topic, b"out")
    assert producer.flush(10) == 0
    assert spans.get_finished_spans() == ()
    consumer = confluent.TracedConsumer({"bootstrap.servers": bootstrap, "group.id": "g"})
    consumer.assign([CTopicPartition(topic, 0, 0)])
    deadline = time.monotonic() + 15
    message = None
    while message is None and time.monotonic() < deadline:
        got = consumer.poll(0.5)
        if got is not None and got.error() is None:
            message = got
    assert message is not None
    assert traceparents(message.headers()) == [TRACEPARENT]
    assert current_ids() == IDS and not trace.get_current_span().is_recording()
    consumer.close()
    assert spans.get_finished_spans() == ()
