"""Kafka producer and consumer processes for the propagation check, each writing its spans to
its own OTLP JSON file (`tracectx.file_exporter.OTLPJsonFileExporter`).

    python -m tests.viz.kafka_two_process_app produce BOOTSTRAP TOPIC SPANS N TAG
    python -m tests.viz.kafka_two_process_app consume BOOTSTRAP TOPIC SPANS N

Both use tracectx_kafka (`TracedProducer`, `TracedConsumer`). Run the producer with
``OTEL_PROPAGATORS=none`` and its records go without headers: the deliberately broken hop.
Each record is keyed ``order-<TAG>-<i>`` inside a ``POST /order`` span of ``checkout``; the
consumer (``payments``) handles each record in a ``capture`` span.
"""

from __future__ import annotations

import sys

from kafka import TopicPartition
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from tracectx import traced
from tracectx.file_exporter import OTLPJsonFileExporter
from tracectx_kafka import TracedConsumer, TracedProducer


def _provider(service: str, spans: str) -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPJsonFileExporter(spans)))
    trace.set_tracer_provider(provider)
    return provider


def produce(bootstrap: str, topic: str, spans: str, n: int, tag: str) -> None:
    provider = _provider("checkout", spans)
    producer = TracedProducer(bootstrap_servers=bootstrap)
    for i in range(n):
        with traced("POST /order"):
            producer.send(topic, key=f"order-{tag}-{i}".encode(), value=b"{}").get(timeout=30)
    producer.flush(30)
    producer.close()
    provider.shutdown()


def consume(bootstrap: str, topic: str, spans: str, n: int) -> None:
    provider = _provider("payments", spans)
    consumer = TracedConsumer(
        bootstrap_servers=bootstrap, auto_offset_reset="earliest", consumer_timeout_ms=60_000
    )
    consumer.assign([TopicPartition(topic, 0)])
    seen = 0
    for _record in consumer:
        with traced("capture"):
            seen += 1
        if seen == n:
            break
    consumer.close()
    provider.shutdown()
    if seen != n:
        raise SystemExit(f"consumed {seen} of {n} records")


if __name__ == "__main__":
    if sys.argv[1] == "produce":
        produce(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), sys.argv[6])
    else:
        consume(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
