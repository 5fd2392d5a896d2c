"""What bound metadata may leave on a record, and what an inbound record may claim: secrets
never travel (not even with ``propagate_keys=["*"]``, not in a DLQ envelope), and inbound
baggage is metadata only for keys the consumer trusts."""

from __future__ import annotations

import pytest
from kafka import KafkaProducer

from tests.integration.kafka.test_consumer import consumer_for
from tests.integration.kafka.test_producer import read_all
from tracectx import ErrorKind, bind, configure, get_bound, new_error, traced
from tracectx_kafka import SendMode, TracedProducer, send_to_dlq

pytestmark = pytest.mark.integration

SECRET = b"S3CRET"


def header_bytes(record) -> bytes:
    return b"\n".join(k.encode() + b"=" + (v or b"") for k, v in record.headers)


def test_sensitive_metadata_never_in_any_produced_header(spans, bootstrap, make_topic):
    topic, dlq = make_topic(), make_topic()
    configure(propagate_keys=["*"])
    span_mode = TracedProducer(bootstrap_servers=bootstrap)
    propagate = TracedProducer(bootstrap_servers=bootstrap, send_mode=SendMode.PROPAGATE)
    with traced("request"):
        bind(password="pw-S3CRET", token="tok-S3CRET", order_id="o1")
        bind(profile={"password": "nested-S3CRET", "plan": "gold"})
        span_mode.send(topic, b"a").get(10)
        propagate.send(topic, b"b").get(10)
        records = read_all(bootstrap, topic, 2)
        try:
            raise new_error(ErrorKind.BUSINESS, "declined", api_token="api-S3CRET")
        except Exception as exc:
            send_to_dlq(span_mode, records[0], exc, dlq).get(10)
    span_mode.close()
    propagate.close()
    (dead,) = read_all(bootstrap, dlq, 1)
    for record in [*records, dead]:
        assert SECRET not in header_bytes(record)
        assert b"order_id=o1" in dict(record.headers)["baggage"]  # the test can see baggage
    assert b'"order_id":"o1"' in dict(dead.headers)["tracectx-error"]


@pytest.mark.parametrize("allowlist", [[], ["order*", "tenant"]], ids=["default", "others"])
def test_forged_inbound_baggage_gives_no_metadata(spans, bootstrap, make_topic, allowlist):
    topic = make_topic()
    raw = KafkaProducer(bootstrap_servers=bootstrap)
    forged = b"tracectx.bound=account_id,account_id=acc_VICTIM"
    raw.send(topic, b"v", headers=[("baggage", forged)]).get(10)
    raw.close()
    configure(baggage_allowlist=allowlist)
    consumer = consumer_for(bootstrap, topic)
    next(consumer)
    seen = get_bound()
    err = new_error(ErrorKind.BUSINESS, "in the loop body")
    consumer.close()
    assert seen == {}
    assert "account_id" not in err.metadata
