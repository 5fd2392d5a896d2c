"""Against the broker: each refused header of a record is counted once however the record is
consumed, and a poisoned dead-letter envelope is refused under a fixed reason, never a crash."""

from __future__ import annotations

import logging

import pytest
from kafka import KafkaProducer

from tests.helpers import all_named
from tests.integration.kafka.rejections import Rejections
from tests.integration.kafka.test_consumer import consumer_for, poll_until
from tracectx.metrics import REASONS
from tracectx_kafka import dlq_error, traced_records

pytestmark = pytest.mark.integration

TP = b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
BAD = [
    [("traceparent", b"00-zzzz-not-a-trace-01")],
    [("traceparent", TP), ("traceparent", TP.replace(b"b7ad", b"c7ad"))],
    [("traceparent", b"\xff\xfe\x00garbage")],
]
EXPECTED = {
    ("kafka", "malformed_traceparent"): 1,
    ("kafka", "duplicate_header"): 1,
    ("kafka", "non_utf8_header"): 1,
}


def send_raw(bootstrap: str, topic: str, headers_list: list) -> None:
    raw = KafkaProducer(bootstrap_servers=bootstrap)
    for headers in headers_list:
        raw.send(topic, b"payload", headers=headers)
    raw.flush(10)
    raw.close()


@pytest.mark.parametrize("how", ["poll+traced_records", "poll", "iteration"])
def test_each_bad_traceparent_counted_once(spans, bootstrap, make_topic, how):
    topic = make_topic()
    send_raw(bootstrap, topic, BAD)
    consumer = consumer_for(bootstrap, topic)
    with Rejections() as counted:
        if how == "iteration":
            for record in consumer:
                if record.offset == len(BAD) - 1:
                    break
        else:
            batch = poll_until(consumer, len(BAD))
            if how == "poll+traced_records":
                for _record in traced_records(batch, consumer):
                    pass
        consumer.close()
    assert counted.delta == EXPECTED
    expected_process = 0 if how == "poll" else len(BAD)
    assert len(all_named(spans, f"process {topic}")) == expected_process


POISON = {
    "nested_json": b"[" * 1024 + b"]" * 1024,
    "nested_metadata": b'{"v":1,"message":"m","error_id":"ab","metadata":{"a":'
    + b"[" * 900
    + b"]" * 900
    + b"}}",
    "not_json": b"{not json",
    "non_utf8": b"\xff\xfe{}",
    "wrong_types": b'{"v":1,"message":7,"error_id":["ab"],"origin":"x"}',
    "oversized": b'{"v":1,"message":"' + b"x" * 70_000 + b'"}',
}
POISON_REASON = {
    "nested_json": "corrupt_envelope",
    "nested_metadata": None,  # a usable envelope: the nesting is cut, not a refusal
    "not_json": "corrupt_envelope",
    "non_utf8": "non_utf8_header",
    "wrong_types": "corrupt_envelope",
    "oversized": "oversized_header",
}


def test_poisoned_envelopes_refused_by_fixed_reason_once_each(spans, bootstrap, make_topic, caplog):
    """Through a DLQ consumer (whose process span reads the envelope) and `dlq_error` on the
    same record: one count per record, under a fixed reason; nothing of the payload is logged."""
    caplog.set_level(logging.DEBUG, logger="tracectx")
    topic = make_topic()
    many = [[("tracectx-error", b"{not json %d" % i)] for i in range(30)]
    poisoned = [[("tracectx-error", v)] for v in POISON.values()]
    send_raw(bootstrap, topic, poisoned + many)
    consumer = consumer_for(bootstrap, topic)
    results = []
    with Rejections() as counted:
        for record in consumer:
            results.append(dlq_error(record))
            assert dlq_error(record) is results[-1]  # read once, same answer
            if record.offset == len(poisoned) + len(many) - 1:
                break
        consumer.close()
    names = list(POISON)
    for name, result in zip(names, results, strict=False):
        assert (result is None) is (POISON_REASON[name] is not None), name
    assert results[len(names) :] == [None] * len(many)
    assert {reason for _, reason in counted.delta} <= REASONS
    assert counted.delta == {
        ("kafka", "corrupt_envelope"): 3 + len(many),
        ("kafka", "non_utf8_header"): 1,
        ("kafka", "oversized_header"): 1,
    }
    assert not any("not json" in r.getMessage() for r in caplog.records)
    assert len(all_named(spans, f"process {topic}")) == len(poisoned) + len(many)


@pytest.mark.parametrize(
    "headers",
    [
        None,
        "tracectx-error",
        [("tracectx-error", None)],
        [("tracectx-error", 42)],
        [("tracectx-error", ["nested"])],
        [("tracectx-error", b"{}"), ("tracectx-error", b"[]")],
        [(b"tracectx-error", b"{}")],
        [("tracectx-error",)],
    ],
)
def test_dlq_error_on_wrong_types_returns_none(headers):
    from kafka.consumer.fetcher import ConsumerRecord

    record = ConsumerRecord("t", 0, 0, 0, 0, None, b"v", None, headers, None, -1, -1, -1)
    with Rejections() as counted:
        assert dlq_error(record) is None
    assert sum(counted.delta.values()) <= 1
    assert {reason for _, reason in counted.delta} <= REASONS
