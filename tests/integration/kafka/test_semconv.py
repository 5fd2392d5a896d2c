"""Current messaging conventions on kafka-python's spans: receive spans are CLIENT, and the
recommended attributes (message key, server address/port, client id) are set when known."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.trace import SpanKind

from tests.helpers import all_named
from tests.integration.kafka.test_consumer import consumer_for, poll_until
from tracectx import traced
from tracectx_kafka import TracedProducer, traced_records
from tracectx_kafka.attributes import MAX_KEY_CHARS, key_text
from tracectx_kafka.client import server_of


@pytest.mark.integration
def test_kafka_python_spans(spans, bootstrap, make_topic):
    topic = make_topic()
    producer = TracedProducer(bootstrap_servers=[bootstrap], client_id="checkout")
    with traced("request"):
        producer.send(topic, b"v", key=b"order-7").get(10)
        producer.send(topic, b"w").get(10)
    producer.close()
    consumer = consumer_for(bootstrap, topic, client_id="billing-1")
    for _record in traced_records(poll_until(consumer, 2), consumer):
        pass
    consumer.close()
    host, port = bootstrap.split(":")
    keyed, unkeyed = all_named(spans, f"send {topic}")
    assert keyed.attributes["messaging.kafka.message.key"] == "order-7"
    assert "messaging.kafka.message.key" not in unkeyed.attributes
    assert keyed.attributes["messaging.client.id"] == "checkout"
    (poll,) = all_named(spans, f"poll {topic}")
    assert poll.kind is SpanKind.CLIENT
    assert poll.attributes["messaging.operation.type"] == "receive"
    for span in (keyed, poll, *all_named(spans, f"process {topic}")):
        assert (span.attributes["server.address"], span.attributes["server.port"]) == (
            host,
            int(port),
        )
    assert poll.attributes["messaging.client.id"] == "billing-1"
    process = all_named(spans, f"process {topic}")
    assert [p.attributes.get("messaging.kafka.message.key") for p in process] == ["order-7", None]


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ("broker:9092", ("broker", 9092)),
        ("a:1,b:2", ("a", 1)),
        (["h1:10", "h2:20"], ("h1", 10)),
        ("PLAINTEXT://k:9093", ("k", 9093)),
        ("[::1]:9092", ("::1", 9092)),
        ("broker", ("broker", None)),
        ("", None),
        ([], None),
        (None, None),
    ],
)
def test_server_of(setting, expected):
    assert server_of(setting) == expected


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=5000) | st.text(max_size=5000) | st.integers() | st.none())
def test_key_text_is_bounded_text_or_none(key):
    text = key_text(key)
    assert text is None or (isinstance(text, str) and 0 < len(text) <= MAX_KEY_CHARS)


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        (b"\x00\xff\xfe", None),  # not UTF-8: left out, not written as replacement characters
        (b"\xc3", None),  # a cut character in a whole (short) key is not text either
        # a long key whose character is cut only by the bytes read (1,024) is still text
        (b"a" + "é".encode() * 600, ("a" + "é" * 600)[:MAX_KEY_CHARS]),
        (b"order-7", "order-7"),
        (7, "7"),
    ],
)
def test_key_text_leaves_out_keys_that_are_not_text(key, expected):
    assert key_text(key) == expected


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000))
def test_key_text_of_bytes_is_the_keys_own_text(key):
    """Whatever is recorded of a binary key is the start of the key itself, never a stand-in."""
    text = key_text(key)
    assert text is None or key.startswith(text.encode())


@pytest.mark.integration
def test_tombstones_are_marked_on_send_and_process_spans(spans, bootstrap, make_topic):
    """``messaging.kafka.message.tombstone`` (required when true) for a record with no value."""
    topic = make_topic()
    producer = TracedProducer(bootstrap_servers=[bootstrap])
    producer.send(topic, None, key=b"k").get(10)
    producer.send(topic, b"v", key=b"k").get(10)
    producer.close()
    consumer = consumer_for(bootstrap, topic)
    for _record in traced_records(poll_until(consumer, 2), consumer):
        pass
    consumer.close()
    tombstone = "messaging.kafka.message.tombstone"
    sends = all_named(spans, f"send {topic}")
    process = all_named(spans, f"process {topic}")
    assert [s.attributes.get(tombstone) for s in sends] == [True, None]
    assert [s.attributes.get(tombstone) for s in process] == [True, None]


def test_a_callable_deserialised_value_is_never_called():
    """Tombstone detection calls a confluent Message's ``value()`` accessor, never a value."""
    from tracectx_kafka.records import record_info

    calls = []

    class Record:
        topic, partition, offset, key, headers = "t", 0, 1, None, None

        def __init__(self, value):
            self.value = value

    assert record_info(Record(None)).tombstone is True
    assert record_info(Record(lambda: calls.append(1))).tombstone is False
    assert calls == []
