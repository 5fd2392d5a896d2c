"""Consumed records run in the producer's trace: iteration, poll batches, links, DLQ."""

from __future__ import annotations

import logging
import time

import pytest
from kafka import KafkaConsumer, TopicPartition
from opentelemetry.trace import SpanKind, StatusCode

from tests.helpers import all_named, by_name, current_ids, hex_span, hex_trace
from tracectx import ErrorKind, bound, configure, get_bound, new_error, traced
from tracectx import semconv as sc
from tracectx_kafka import (
    TracedConsumer,
    TracedProducer,
    dlq_error,
    process_record,
    send_to_dlq,
    trace_consumer,
    traced_records,
)

pytestmark = pytest.mark.integration


#: How long iteration waits for a record before it stops. The tests' loops end on the records
#: they expect, so this only bounds a failure: connecting, fetching metadata and offsets and the
#: first fetch can take seconds on a loaded machine.
ITERATION_TIMEOUT_MS = 30_000


def consumer_for(bootstrap: str, topic: str, cls=TracedConsumer, **kw):
    kw.setdefault("consumer_timeout_ms", ITERATION_TIMEOUT_MS)
    consumer = cls(bootstrap_servers=bootstrap, auto_offset_reset="earliest", **kw)
    consumer.assign([TopicPartition(topic, 0)])
    return consumer


def produce(bootstrap: str, topic: str, n: int, name: str = "request") -> None:
    producer = TracedProducer(bootstrap_servers=bootstrap)
    for i in range(n):
        with traced(f"{name}-{i}"), bound(order=f"o{i}"):
            producer.send(topic, f"m{i}".encode())
    producer.flush(10)
    producer.close()


def poll_until(consumer, n: int, timeout: float = ITERATION_TIMEOUT_MS / 1000) -> dict:
    got: dict = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for tp, records in consumer.poll(timeout_ms=200).items():
            got.setdefault(tp, []).extend(records)
        if sum(map(len, got.values())) >= n:
            return got
    raise AssertionError(f"only {got} after polling for {timeout} s")


class TestIteration:
    def test_loop_body_runs_in_the_producers_trace(self, spans, bootstrap, make_topic):
        topic = make_topic()
        configure(propagate_keys=["order"], baggage_allowlist=["order"])  # both sides
        produce(bootstrap, topic, 3)
        consumer = consumer_for(bootstrap, topic)
        seen = []
        for _record in consumer:
            with traced("handle"):
                seen.append((current_ids()[0], get_bound()))
            if len(seen) == 3:
                break
        consumer.close()
        process = all_named(spans, f"process {topic}")
        assert len(process) == 3
        for i, span in enumerate(
            sorted(process, key=lambda s: s.attributes["messaging.kafka.offset"])
        ):
            send = [s for s in all_named(spans, f"send {topic}") if hex_trace(s) == hex_trace(span)]
            assert span.parent.span_id == send[0].context.span_id
            assert span.kind is SpanKind.CONSUMER
            assert span.attributes["messaging.operation.type"] == "process"
            assert span.attributes["messaging.destination.partition.id"] == "0"
            assert span.attributes["messaging.kafka.offset"] == i
            assert seen[i] == (hex_trace(by_name(spans, f"request-{i}")), {"order": f"o{i}"})
        for handle in all_named(spans, "handle"):
            assert handle.parent.span_id in {p.context.span_id for p in process}
        assert not all_named(spans, f"poll {topic}")  # iteration's internal poll: no span
        assert current_ids()[0] == "0" * 32  # nothing left attached after close

    def test_span_stays_open_until_the_next_record(self, spans, bootstrap, make_topic):
        topic = make_topic()
        produce(bootstrap, topic, 2)
        consumer = consumer_for(bootstrap, topic)
        next(consumer)
        assert not all_named(spans, f"process {topic}")
        next(consumer)
        assert len(all_named(spans, f"process {topic}")) == 1
        consumer.close()
        assert len(all_named(spans, f"process {topic}")) == 2

    def test_error_escaping_the_with_block_is_recorded(self, spans, bootstrap, make_topic):
        topic = make_topic()
        produce(bootstrap, topic, 1)
        with pytest.raises(ValueError), consumer_for(bootstrap, topic) as consumer:
            for _record in consumer:
                raise ValueError("bad payload")
        span = by_name(spans, f"process {topic}")
        assert span.status.status_code is StatusCode.ERROR
        assert span.attributes[sc.ATTR_ROLE] == sc.ROLE_ORIGIN
        assert hex_trace(span) == hex_trace(by_name(spans, "request-0"))

    def test_group_name_and_existing_consumer(self, spans, bootstrap, make_topic):
        topic = make_topic()
        produce(bootstrap, topic, 1)
        consumer = trace_consumer(
            KafkaConsumer(
                topic,
                bootstrap_servers=bootstrap,
                group_id="billing",
                auto_offset_reset="earliest",
                consumer_timeout_ms=15000,
                max_poll_interval_ms=3000,
                session_timeout_ms=6000,
                heartbeat_interval_ms=1000,
            )
        )
        record = next(consumer)
        consumer.close()
        span = by_name(spans, f"process {topic}")
        assert span.attributes["messaging.consumer.group.name"] == "billing"
        assert record.value == b"m0"

    def test_link_instead_of_parent(self, spans, bootstrap, make_topic):
        topic = make_topic()
        produce(bootstrap, topic, 1)
        consumer = consumer_for(bootstrap, topic, link_to_producer=True)
        with traced("worker-loop"):
            next(consumer)
            consumer.close()
        span, send = by_name(spans, f"process {topic}"), by_name(spans, f"send {topic}")
        assert span.parent.span_id == by_name(spans, "worker-loop").context.span_id
        assert [link.context.span_id for link in span.links] == [send.context.span_id]


class TestPoll:
    def test_receive_span_links_every_record(self, spans, bootstrap, make_topic):
        topic = make_topic()
        produce(bootstrap, topic, 3)
        consumer = consumer_for(bootstrap, topic)
        with traced("batch-job"):
            batch = poll_until(consumer, 3)
            for record in traced_records(batch, consumer):
                with traced("handle"):
                    assert current_ids()[0] == hex_trace(by_name(spans, f"request-{record.offset}"))
        consumer.close()
        polls = all_named(spans, f"poll {topic}")
        assert sum(p.attributes["messaging.batch.message_count"] for p in polls) == 3
        linked = {link.context.span_id for p in polls for link in p.links}
        assert linked == {s.context.span_id for s in all_named(spans, f"send {topic}")}
        assert all(p.parent.span_id == by_name(spans, "batch-job").context.span_id for p in polls)
        assert len(all_named(spans, f"process {topic}")) == 3

    def test_process_record_records_failures(self, spans, bootstrap, make_topic):
        topic = make_topic()
        produce(bootstrap, topic, 1)
        consumer = consumer_for(bootstrap, topic)
        (record,) = next(iter(poll_until(consumer, 1).values()))
        with pytest.raises(Exception), process_record(record):
            raise new_error(ErrorKind.BUSINESS, "declined", code="E42")
        consumer.close()
        span = by_name(spans, f"process {topic}")
        assert span.attributes[sc.ATTR_KIND] == "BUSINESS"
        assert hex_trace(span) == hex_trace(by_name(spans, "request-0"))


class TestDeadLetter:
    def test_dlq_round_trip_keeps_error_identity(self, spans, bootstrap, make_topic):
        topic = make_topic()
        dlq = make_topic(f"{topic}.dlq")
        produce(bootstrap, topic, 1)
        consumer = consumer_for(bootstrap, topic)
        producer = TracedProducer(bootstrap_servers=bootstrap)
        record = next(consumer)
        try:
            raise new_error(
                ErrorKind.BUSINESS, "card declined", code="E42", account_id="acc_9", card="4111"
            )
        except Exception as exc:
            err = exc
            send_to_dlq(producer, record, exc).get(10)
        consumer.close()
        producer.close()

        dlq_consumer = consumer_for(bootstrap, dlq)
        dead = next(dlq_consumer)
        rebuilt = dlq_error(dead)
        dlq_consumer.close()
        assert [k for k, _ in dead.headers].count("traceparent") == 1
        assert (rebuilt.error_id, rebuilt.kind, rebuilt.code) == (
            err.error_id,
            ErrorKind.BUSINESS,
            "E42",
        )
        assert rebuilt.metadata["account_id"] == "acc_9"
        assert rebuilt.metadata["card"] == "[REDACTED]"

        failed = all_named(spans, f"process {topic}")[0]
        dlq_span = by_name(spans, f"process {dlq}")
        assert failed.attributes[sc.ATTR_ID] == err.error_id
        assert dlq_span.attributes[sc.ATTR_ID] == err.error_id
        assert dlq_span.attributes[sc.ATTR_ROLE] == sc.ROLE_ABSORBED
        assert hex_trace(dlq_span) == hex_trace(failed)  # the story continues in one trace
        assert rebuilt.origin.span_id == hex_span(failed)


HOSTILE = {
    "malformed": [("traceparent", b"00-zzzz-not-a-trace-01")],
    "duplicated": [
        ("traceparent", b"00-11111111111111111111111111111111-2222222222222222-01"),
        ("traceparent", b"00-33333333333333333333333333333333-4444444444444444-01"),
    ],
    "non_utf8": [("traceparent", b"\xff\xfe\x00garbage")],
    "none_value": [("traceparent", None)],
    "huge_baggage": [("baggage", b"k=" + b"v" * 100_000)],
    "corrupt_envelope": [("tracectx-error", b"{not json")],
}


class TestHostileRecords:
    @pytest.mark.parametrize("headers", HOSTILE.values(), ids=HOSTILE.keys())
    def test_record_delivered_with_a_fresh_root(
        self, spans, bootstrap, make_topic, headers, caplog
    ):
        from kafka import KafkaProducer

        topic = make_topic()
        raw = KafkaProducer(bootstrap_servers=bootstrap)
        if any(v is None for _, v in headers):  # kafka-python refuses None values on send
            raw.send(topic, b"payload").get(10)
        else:
            raw.send(topic, b"payload", headers=headers).get(10)
        raw.close()
        caplog.set_level(logging.DEBUG, logger="tracectx")
        consumer = consumer_for(bootstrap, topic)
        if any(v is None for _, v in headers):
            (record,) = next(iter(poll_until(consumer, 1).values()))
            with process_record(record._replace(headers=headers)):
                pass
        else:
            record = next(consumer)
        consumer.close()
        assert record.value == b"payload"
        span = by_name(spans, f"process {topic}")
        assert span.parent is None and not span.links
        assert dict(span.attributes).get(sc.ATTR_ID) is None
        if "baggage" not in dict(headers):
            assert "refused inbound" in caplog.text
