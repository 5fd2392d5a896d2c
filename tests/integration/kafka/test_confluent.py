"""confluent-kafka (librdkafka) against the tansu broker: the kafka-python contract, from the
shared core — produce spans or propagation only with delivery callbacks in the record's trace,
poll process spans current for the handler (context restored after), consume receive spans with
links (none when empty), DLQ envelope, hostile headers counted once, one traceparent after
forwarding, the instrumentor undone exactly."""

from __future__ import annotations

import time

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from tests.helpers import all_named, by_name, current_ids, hex_span, hex_trace
from tests.integration.kafka.rejections import Rejections
from tracectx import ErrorKind, bind, bound, configure, get_bound, new_error, traced
from tracectx import semconv as sc
from tracectx_demo.embedded import free_port
from tracectx_kafka import dlq_error, send_to_dlq, traced_records

confluent_kafka = pytest.importorskip("confluent_kafka")
from confluent_kafka import Consumer, Producer, TopicPartition  # noqa: E402

from tracectx_kafka.confluent import (  # noqa: E402
    ConfluentKafkaInstrumentor,
    TracedConsumer,
    TracedProducer,
)

pytestmark = pytest.mark.integration
STALE = b"00-11111111111111111111111111111111-2222222222222222-01"


def consumer_for(bootstrap: str, topic: str, cls=TracedConsumer, group: str = "g", **kw):
    consumer = cls({"bootstrap.servers": bootstrap, "group.id": group}, **kw)
    consumer.assign([TopicPartition(topic, 0, 0)])
    return consumer


def produce(bootstrap: str, topic: str, n: int, **kw) -> None:
    producer = TracedProducer({"bootstrap.servers": bootstrap}, **kw)
    for i in range(n):
        with traced(f"request-{i}"), bound(order=f"o{i}"):
            producer.produce(topic, f"m{i}".encode(), key=f"k{i}".encode())
    assert producer.flush(10) == 0


def poll_one(consumer, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is not None and message.error() is None:
            return message
    raise AssertionError("no message")


def consume_n(consumer, n: int, timeout: float = 15.0) -> list:
    got: list = []
    deadline = time.monotonic() + timeout
    while len(got) < n and time.monotonic() < deadline:
        got.extend(m for m in consumer.consume(n - len(got), 0.5) if m.error() is None)
    assert len(got) == n
    return got


def read_raw(bootstrap: str, topic: str, n: int) -> list:
    consumer = consumer_for(bootstrap, topic, cls=Consumer)
    got = consume_n(consumer, n)
    consumer.close()
    return got


def traceparents(message) -> list[bytes]:
    return [v for k, v in message.headers() or [] if k == "traceparent"]


def test_produce_span_semconv_and_delivery_callback_in_trace(spans, bootstrap, make_topic):
    topic = make_topic()
    producer = TracedProducer({"bootstrap.servers": bootstrap, "client.id": "checkout"})
    delivered = []
    with traced("request"):
        producer.produce(
            topic,
            b"v",
            b"order-7",
            headers=[("traceparent", STALE), ("app", b"1")],
            on_delivery=lambda err, msg: delivered.append((err, current_ids(), msg.offset())),
        )
        producer.produce(topic, value=b"w", headers={"app": b"2"}, callback=lambda e, m: None)
    assert producer.flush(10) == 0
    request = by_name(spans, "request")
    sends = all_named(spans, f"send {topic}")
    assert len(sends) == 2
    send = sends[0]
    assert send.kind is SpanKind.PRODUCER and send.parent.span_id == request.context.span_id
    host, port = bootstrap.split(":")
    assert send.attributes["messaging.kafka.message.key"] == "order-7"
    assert (send.attributes["server.address"], send.attributes["server.port"]) == (host, int(port))
    assert send.attributes["messaging.client.id"] == "checkout"
    (err, ids, offset) = delivered[0]
    assert err is None and offset == 0
    assert ids == (hex_trace(send), hex_span(send))  # the callback ran in the record's trace
    records = read_raw(bootstrap, topic, 2)
    for record, span in zip(records, sends, strict=True):
        (tp,) = traceparents(record)  # the stale one replaced, not appended to
        assert tp.decode().split("-")[1:3] == [hex_trace(span), hex_span(span)]
    assert ("app", b"1") in records[0].headers() and ("app", b"2") in records[1].headers()


def test_propagate_mode(spans, bootstrap, make_topic):
    topic = make_topic()
    producer = TracedProducer({"bootstrap.servers": bootstrap}, send_mode="propagate")
    with traced("first"):
        first = current_ids()
        producer.produce(topic, b"a")
        producer.produce(topic, b"b", headers=[("traceparent", STALE)])
    producer.flush(10)
    assert not all_named(spans, f"send {topic}")
    records = read_raw(bootstrap, topic, 2)
    assert [tuple(traceparents(r)[0].decode().split("-")[1:3]) for r in records] == [first] * 2
    assert all(len(traceparents(r)) == 1 for r in records)


def test_poll_runs_handler_in_producer_trace_and_restores(spans, bootstrap, make_topic):
    topic = make_topic()
    configure(propagate_keys=["order"], baggage_allowlist=["order"])
    produce(bootstrap, topic, 3)
    consumer = consumer_for(bootstrap, topic, group="billing")
    seen = []
    with traced("app"):
        bind(request="r1")
        before = current_ids()
        for _ in range(3):
            message = poll_one(consumer)
            bind(order_id=message.value().decode())  # a plain bind() in the handler
            with traced("handle"):
                seen.append((current_ids()[0], get_bound().get("order")))
        assert consumer.consume(1, 0.2) == []  # ends the last record's span; empty: no span
        assert current_ids() == before
        assert get_bound() == {"request": "r1"}
        consumer.close()
    process = sorted(
        all_named(spans, f"process {topic}"), key=lambda s: s.attributes["messaging.kafka.offset"]
    )
    assert len(process) == 3
    for i, span in enumerate(process):
        send = [s for s in all_named(spans, f"send {topic}") if hex_trace(s) == hex_trace(span)]
        assert span.kind is SpanKind.CONSUMER
        assert span.parent.span_id == send[0].context.span_id
        assert span.attributes["messaging.consumer.group.name"] == "billing"
        assert span.attributes["messaging.kafka.message.key"] == f"k{i}"
        assert seen[i] == (hex_trace(by_name(spans, f"request-{i}")), f"o{i}")
    assert not all_named(spans, f"consume {topic}")


def test_consume_receive_span_links_and_traced_records(spans, bootstrap, make_topic):
    topic = make_topic()
    produce(bootstrap, topic, 3)
    consumer = consumer_for(bootstrap, topic, link_to_producer=True)
    with traced("batch-job"):
        job = current_ids()[0]
        batch = consume_n(consumer, 3)
        for message in traced_records(batch, consumer):
            assert current_ids()[0] == job  # linked to the producer, a child of the job
            assert message.value().startswith(b"m")
    consumer.close()
    polls = all_named(spans, f"consume {topic}")
    assert polls and all(p.kind is SpanKind.CLIENT for p in polls)
    assert sum(p.attributes["messaging.batch.message_count"] for p in polls) == 3
    assert {link.context.span_id for p in polls for link in p.links} == {
        s.context.span_id for s in all_named(spans, f"send {topic}")
    }
    assert all(len(p.links) == 1 for p in all_named(spans, f"process {topic}"))


def test_error_escaping_with_block_is_recorded(spans, bootstrap, make_topic):
    topic = make_topic()
    produce(bootstrap, topic, 1)
    with pytest.raises(ValueError), consumer_for(bootstrap, topic) as consumer:
        poll_one(consumer)
        raise ValueError("bad payload")
    span = by_name(spans, f"process {topic}")
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[sc.ATTR_ROLE] == sc.ROLE_ORIGIN


def test_dlq_round_trip(spans, bootstrap, make_topic):
    topic, dlq = make_topic(), make_topic()
    produce(bootstrap, topic, 1)
    consumer = consumer_for(bootstrap, topic)
    producer = TracedProducer({"bootstrap.servers": bootstrap})
    message = poll_one(consumer)
    try:
        raise new_error(ErrorKind.BUSINESS, "declined", code="E42", card="4111")
    except Exception as exc:
        err = exc
        assert send_to_dlq(producer, message, exc, dlq) is None
    assert producer.flush(10) == 0
    consumer.close()
    dlq_consumer = consumer_for(bootstrap, dlq)
    dead = poll_one(dlq_consumer)
    rebuilt = dlq_error(dead)
    dlq_consumer.close()
    assert len(traceparents(dead)) == 1
    assert (rebuilt.error_id, rebuilt.code) == (err.error_id, "E42")
    assert rebuilt.metadata["card"] == "[REDACTED]"
    failed, absorbed = by_name(spans, f"process {topic}"), by_name(spans, f"process {dlq}")
    assert absorbed.attributes[sc.ATTR_ID] == err.error_id
    assert absorbed.attributes[sc.ATTR_ROLE] == sc.ROLE_ABSORBED
    assert hex_trace(absorbed) == hex_trace(failed)


BAD = [
    [("traceparent", b"00-zzzz-not-a-trace-01")],
    [("traceparent", STALE), ("traceparent", STALE.replace(b"2222", b"3333"))],
    [("traceparent", b"\xff\xfe\x00garbage")],
    [("tracectx-error", b"{not json")],
    [("traceparent", None)],  # librdkafka carries null header values
]


@pytest.mark.parametrize("how", ["consume+traced_records", "poll"])
def test_hostile_headers_refused_and_counted_once(spans, bootstrap, make_topic, how):
    topic = make_topic()
    raw = Producer({"bootstrap.servers": bootstrap})
    for headers in BAD:
        raw.produce(topic, b"payload", headers=headers)
    assert raw.flush(10) == 0
    consumer = consumer_for(bootstrap, topic)
    with Rejections() as counted:
        if how == "poll":
            for _ in BAD:
                message = poll_one(consumer)
                assert message.value() == b"payload"
                dlq_error(message)
        else:
            for message in traced_records(consume_n(consumer, len(BAD)), consumer):
                dlq_error(message)
        consumer.close()
    assert counted.delta == {
        ("kafka", "malformed_traceparent"): 1,
        ("kafka", "duplicate_header"): 1,
        ("kafka", "non_utf8_header"): 1,
        ("kafka", "corrupt_envelope"): 1,
        ("kafka", "null_header"): 1,
    }
    process = all_named(spans, f"process {topic}")
    assert len(process) == len(BAD)
    assert all(p.parent is None for p in process)


def test_delivery_failure_gets_a_deliver_span_and_callback_in_it(spans):
    producer = TracedProducer(
        {"bootstrap.servers": f"127.0.0.1:{free_port()}", "message.timeout.ms": 300}
    )
    seen = []
    with traced("request"):
        producer.produce("gone", b"lost", on_delivery=lambda err, msg: seen.append(current_ids()))
        assert len(all_named(spans, "send gone")) == 1  # ended at produce()
    producer.flush(10)
    deliver = by_name(spans, "deliver gone")
    send = by_name(spans, "send gone")
    assert deliver.parent.span_id == send.context.span_id
    assert deliver.start_time >= send.end_time
    assert deliver.status.status_code is StatusCode.ERROR
    assert deliver.attributes[sc.ATTR_ERROR_TYPE] == "cimpl.KafkaException"
    assert seen == [(hex_trace(deliver), hex_span(deliver))]
    assert hex_trace(deliver) == hex_trace(by_name(spans, "request"))


def test_instrumentor_with_provider_and_exact_undo(spans, bootstrap, make_topic):
    topic = make_topic()
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrumentor = ConfluentKafkaInstrumentor()
    with pytest.raises(TypeError, match="link_to_produce"):
        instrumentor.instrument(link_to_produce=True)
    assert confluent_kafka.Producer is Producer
    instrumentor.instrument(tracer_provider=provider)
    try:
        producer = confluent_kafka.Producer({"bootstrap.servers": bootstrap})
        assert isinstance(producer, confluent_kafka.Producer)
        with traced("request"):
            producer.produce(topic, b"a")
        producer.flush(10)
        consumer = confluent_kafka.Consumer({"bootstrap.servers": bootstrap, "group.id": "g"})
        consumer.assign([TopicPartition(topic, 0, 0)])
        poll_one(consumer)
        consumer.close()
    finally:
        instrumentor.uninstrument()
    assert (confluent_kafka.Producer, confluent_kafka.Consumer) == (Producer, Consumer)
    assert type(confluent_kafka.Producer({"bootstrap.servers": bootstrap})) is Producer
    names = [s.name for s in exporter.get_finished_spans()]
    assert names.count(f"send {topic}") == 1 and names.count(f"process {topic}") == 1
    assert not all_named(spans, f"send {topic}")


def test_subscribed_group_consumer(spans, bootstrap, make_topic):
    """librdkafka's classic group protocol (join, sync, offset fetch) works against tansu."""
    topic = make_topic()
    produce(bootstrap, topic, 1)
    consumer = TracedConsumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"grp-{topic}",
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 1000,
        }
    )
    consumer.subscribe([topic])
    message = poll_one(consumer, timeout=60)
    consumer.close()
    span = by_name(spans, f"process {topic}")
    assert message.value() == b"m0"
    assert span.attributes["messaging.consumer.group.name"] == f"grp-{topic}"
    assert hex_trace(span) == hex_trace(by_name(spans, "request-0"))


def test_context_mode_poll_restores_each_records_context_without_a_span(
    spans, bootstrap, make_topic
):
    """``record_mode="context"``: ``poll()`` makes each message's producer context current (a
    confluent ``Message``'s headers are a method) and no span; close() restores the caller's."""
    topic = make_topic()
    produce(bootstrap, topic, 2, send_mode="propagate")
    sent = [hex_trace(by_name(spans, f"request-{i}")) for i in range(2)]
    spans.clear()
    consumer = consumer_for(bootstrap, topic, record_mode="context")
    seen = []
    for _ in range(2):
        poll_one(consumer)
        seen.append(current_ids()[0])
    consumer.close()
    assert seen == sent
    assert current_ids()[0] == "0" * 32
    assert spans.get_finished_spans() == ()


def test_send_spans_carry_librdkafkas_default_client_id(spans, bootstrap, make_topic):
    """No ``client.id`` configured: the span says what the broker sees, librdkafka's
    ``rdkafka`` (the README promises ``messaging.client.id`` on every span)."""
    topic = make_topic()
    producer = TracedProducer({"bootstrap.servers": bootstrap})
    producer.produce(topic, None, key=b"k")
    producer.flush(10)
    (send,) = all_named(spans, f"send {topic}")
    assert send.attributes["messaging.client.id"] == "rdkafka"
    assert send.attributes["messaging.kafka.message.tombstone"] is True
