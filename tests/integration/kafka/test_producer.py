"""send(): PRODUCER spans or propagation only, headers replaced not appended, failures kept."""

from __future__ import annotations

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from opentelemetry.trace import SpanKind, StatusCode

from tests.helpers import all_named, by_name, current_ids, hex_span, hex_trace
from tests.integration.kafka.test_consumer import ITERATION_TIMEOUT_MS
from tracectx import ErrorKind, bound, configure, traced
from tracectx import semconv as sc
from tracectx_demo.embedded import tansu_broker
from tracectx_kafka import KafkaInstrumentor, SendMode, TracedProducer, trace_producer

pytestmark = pytest.mark.integration


def read_all(bootstrap: str, topic: str, n: int) -> list:
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        consumer_timeout_ms=ITERATION_TIMEOUT_MS,  # the loop ends on the n-th record
    )
    consumer.assign([TopicPartition(topic, 0)])
    records = []
    for record in consumer:
        records.append(record)
        if len(records) == n:
            break
    consumer.close()
    assert len(records) == n
    return records


def traceparents(record) -> list[bytes]:
    return [v for k, v in record.headers if k == "traceparent"]


class TestSpanMode:
    def test_producer_span_carries_trace_and_semconv(self, spans, bootstrap, make_topic):
        topic = make_topic()
        configure(propagate_keys=["account_id"])  # bound metadata travels only when listed
        producer = TracedProducer(bootstrap_servers=bootstrap)
        with traced("request"), bound(account_id="acc_1"):
            producer.send(topic, b"v").get(10)
        producer.close()
        request, send = by_name(spans, "request"), by_name(spans, f"send {topic}")
        assert send.kind is SpanKind.PRODUCER
        assert send.parent.span_id == request.context.span_id
        assert send.attributes["messaging.system"] == "kafka"
        assert send.attributes["messaging.destination.name"] == topic
        assert send.attributes["messaging.operation.type"] == "send"
        assert send.attributes["messaging.destination.partition.id"] == "0"
        assert "messaging.kafka.offset" not in send.attributes  # ended before the broker acked
        (record,) = read_all(bootstrap, topic, 1)
        (tp,) = traceparents(record)
        assert tp.decode().split("-")[1:3] == [hex_trace(send), hex_span(send)]
        baggage = dict(record.headers)["baggage"].decode()
        assert "account_id=acc_1" in baggage

    @pytest.mark.parametrize(
        "call",
        [
            lambda p, t: p.send(t, b"v", None, [("app", b"1")]),  # positional headers
            lambda p, t: p.send(t, b"v", headers=(("app", b"1"),)),  # tuple
            lambda p, t: p.send(t, value=b"v", headers=None),
            lambda p, t: p.send(t, b"v"),
        ],
        ids=["positional", "tuple", "none", "absent"],
    )
    def test_send_signature_unchanged(self, spans, bootstrap, make_topic, call):
        topic = make_topic()
        producer = TracedProducer(bootstrap_servers=bootstrap)
        with traced("request"):
            metadata = call(producer, topic).get(10)
        producer.close()
        assert metadata.topic == topic
        (record,) = read_all(bootstrap, topic, 1)
        assert len(traceparents(record)) == 1
        assert hex_trace(by_name(spans, f"send {topic}")) == hex_trace(by_name(spans, "request"))

    def test_forwarded_headers_replace_stale_traceparent(self, spans, bootstrap, make_topic):
        topic = make_topic()
        stale = b"00-11111111111111111111111111111111-2222222222222222-01"
        producer = TracedProducer(bootstrap_servers=bootstrap)
        with traced("request"):
            producer.send(topic, b"v", headers=[("traceparent", stale), ("app", b"1")]).get(10)
        producer.close()
        (record,) = read_all(bootstrap, topic, 1)
        (tp,) = traceparents(record)
        send = by_name(spans, f"send {topic}")
        assert tp.decode().split("-")[1:3] == [hex_trace(send), hex_span(send)]
        assert ("app", b"1") in record.headers

    def test_existing_producer_wrapped_in_place(self, spans, bootstrap, make_topic):
        topic = make_topic()
        producer = trace_producer(KafkaProducer(bootstrap_servers=bootstrap))
        assert trace_producer(producer) is producer  # twice: still one span per send
        with traced("request"):
            producer.send(topic, b"v").get(10)
        producer.close()
        assert len(all_named(spans, f"send {topic}")) == 1

    def test_sync_failure_recorded_and_reraised(self, spans, bootstrap):
        producer = TracedProducer(bootstrap_servers=bootstrap, max_request_size=1024)
        with pytest.raises(Exception) as info:
            producer.send("big", b"x" * 4096)
        producer.close()
        send = by_name(spans, "send big")
        assert send.status.status_code is StatusCode.ERROR
        assert send.attributes[sc.ATTR_ERROR_TYPE] == (
            f"{type(info.value).__module__}.{type(info.value).__qualname__}"
        )


class TestDeliveryFailure:
    def test_send_spans_end_at_send_and_failures_get_their_own_span(self, spans):
        """With the broker gone no span waits for the delivery timeout: every send span is
        finished when send() returns; each failure is a TRANSIENT `deliver` span under it."""
        service = tansu_broker().start()
        bootstrap = f"127.0.0.1:{service.port}"
        producer = TracedProducer(
            bootstrap_servers=bootstrap,
            request_timeout_ms=500,
            # the 50 sends and the check that no delivery failed yet must fit in this, on a
            # loaded machine too
            delivery_timeout_ms=5000,
            retries=0,
            max_block_ms=2000,
        )
        producer.send("warm", b"v").get(10)  # metadata cached, connection open
        service.stop()
        count = 50
        with traced("request"):
            futures = [producer.send("warm", b"lost") for _ in range(count)]
            assert len(all_named(spans, "send warm")) == count + 1  # none left open
            assert not all_named(spans, "deliver warm")
            with pytest.raises(Exception) as info:
                futures[-1].get(15)
            for future in futures:
                with pytest.raises(Exception):
                    future.get(15)
        producer.close(timeout=1)
        sends = {s.context.span_id: s for s in all_named(spans, "send warm")[1:]}
        delivers = all_named(spans, "deliver warm")
        assert len(delivers) == count
        assert {d.parent.span_id for d in delivers} == set(sends)
        for deliver in delivers:
            send = sends[deliver.parent.span_id]
            assert send.status.status_code is StatusCode.UNSET
            assert deliver.start_time >= send.end_time  # the wait, not the send call
            assert deliver.status.status_code is StatusCode.ERROR
            assert deliver.attributes[sc.ATTR_KIND] == ErrorKind.TRANSIENT.name
            assert deliver.attributes["messaging.destination.name"] == "warm"
        assert sc.ROLE_ORIGIN in {d.attributes[sc.ATTR_ROLE] for d in delivers}
        assert getattr(info.value, "retriable", False)
        assert {hex_trace(d) for d in delivers} == {hex_trace(by_name(spans, "request"))}


class TestPropagateMode:
    def test_no_span_context_injected_and_reused(self, spans, bootstrap, make_topic):
        topic = make_topic()
        producer = TracedProducer(bootstrap_servers=bootstrap, send_mode=SendMode.PROPAGATE)
        with traced("first"):
            ids_first = current_ids()
            for _ in range(3):
                producer.send(topic, b"v")
        with traced("second"):
            ids_second = current_ids()
            producer.send(topic, b"v", headers=[("traceparent", b"stale")]).get(10)
        producer.close()
        assert not all_named(spans, f"send {topic}")
        records = read_all(bootstrap, topic, 4)
        expected = [ids_first] * 3 + [ids_second]
        got = [tuple(traceparents(r)[0].decode().split("-")[1:3]) for r in records]
        assert got == expected
        assert all(len(traceparents(r)) == 1 for r in records)


class TestInstrumentor:
    def test_instrument_and_uninstrument_plain_classes(self, spans, bootstrap, make_topic):
        topic = make_topic()
        originals = (KafkaProducer.send, KafkaConsumer.__next__, KafkaConsumer.poll)
        instrumentor = KafkaInstrumentor()
        instrumentor.instrument()
        try:
            producer = KafkaProducer(bootstrap_servers=bootstrap)
            with traced("request"):
                producer.send(topic, b"v").get(10)
            traced_producer = TracedProducer(bootstrap_servers=bootstrap)
            with traced("again"):
                traced_producer.send(topic, b"v").get(10)  # no double span
        finally:
            instrumentor.uninstrument()
        producer.send(topic, b"plain").get(10)
        producer.close()
        traced_producer.close()
        assert len(all_named(spans, f"send {topic}")) == 2
        instrumentor.instrument()
        try:
            records = read_all(bootstrap, topic, 3)  # a plain KafkaConsumer, now traced
        finally:
            instrumentor.uninstrument()
        process = all_named(spans, f"process {topic}")
        assert len(process) == 3
        assert process[0].parent.span_id == all_named(spans, f"send {topic}")[0].context.span_id
        assert [len(traceparents(r)) for r in records] == [1, 1, 0]
        assert (KafkaProducer.send, KafkaConsumer.__next__, KafkaConsumer.poll) == originals
