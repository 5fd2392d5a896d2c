"""Each client's own contract survives instrumentation: headers a client refuses raise the
error that client raises uninstrumented (kafka-python: TypeError), not one of tracectx's."""

from __future__ import annotations

import asyncio

import pytest

pytestmark = pytest.mark.integration

BAD_HEADERS = ["x", [("only-a-name",)], 7]


def _error_of(call):
    try:
        call()
    except Exception as exc:
        return type(exc)
    return None


@pytest.mark.parametrize("headers", BAD_HEADERS)
@pytest.mark.parametrize("mode", ["span", "propagate"])
def test_kafka_python_bad_headers_raise_the_clients_error(
    spans, bootstrap, make_topic, headers, mode
):
    from kafka import KafkaProducer

    from tracectx_kafka import TracedProducer

    topic = make_topic()
    raw = KafkaProducer(bootstrap_servers=[bootstrap])
    traced = TracedProducer(bootstrap_servers=[bootstrap], send_mode=mode)
    try:
        expected = _error_of(lambda: raw.send(topic, b"v", headers=headers))
        assert expected is TypeError
        with pytest.raises(TypeError):
            traced.send(topic, b"v", headers=headers)
    finally:
        raw.close()
        traced.close()


@pytest.mark.parametrize("headers", BAD_HEADERS)
def test_confluent_bad_headers_raise_the_clients_error(spans, bootstrap, make_topic, headers):
    confluent_kafka = pytest.importorskip("confluent_kafka")
    from tracectx_kafka.confluent import TracedProducer

    topic = make_topic()
    config = {"bootstrap.servers": bootstrap}
    expected = _error_of(
        lambda: confluent_kafka.Producer(config).produce(topic, b"v", headers=headers)
    )
    assert expected is not None
    with pytest.raises(expected):
        TracedProducer(config).produce(topic, b"v", headers=headers)


@pytest.mark.parametrize("headers", BAD_HEADERS)
async def test_aiokafka_bad_headers_raise_the_clients_error(spans, bootstrap, make_topic, headers):
    aiokafka = pytest.importorskip("aiokafka")
    from tracectx_kafka.aiokafka import TracedAIOKafkaProducer

    topic = make_topic()

    async def error_of(cls):
        producer = cls(bootstrap_servers=bootstrap)
        await producer.start()
        try:
            await asyncio.wait_for(producer.send(topic, b"v", headers=headers), 30)
        except Exception as exc:
            return type(exc)
        finally:
            await producer.stop()
        return None

    expected = await error_of(aiokafka.AIOKafkaProducer)
    assert expected is not None
    assert await error_of(TracedAIOKafkaProducer) is expected
