"""Kafka produce/consume throughput against a real broker (tansu, embedded).

Variants, one run: plain kafka-python; plain with one fixed traceparent header (the floor for
any propagation); tracectx with a PRODUCER span per send; tracectx in
propagation-only mode; OTel's KafkaInstrumentor. Spans go to the real SDK with a batch processor
and a discarding exporter. Rounds are interleaved and the median µs/message reported.

    python -m bench.bench_kafka [--messages 100000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from bench.harness import report
from tracectx.embedded import tansu_broker
from tracectx_kafka import SendMode, TracedConsumer, TracedProducer

PAYLOAD = b"x" * 64


class Discard(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


class StaticHeaderProducer(KafkaProducer):  # type: ignore[misc]
    """Plain kafka-python sending one fixed traceparent: the floor for any propagation, since
    kafka-python's own cost per header is large (see README)."""

    HEADERS: ClassVar = [
        ("traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
    ]

    def send(self, topic: str, value: Any = None, **kw: Any) -> Any:
        return super().send(topic, value, headers=list(self.HEADERS), **kw)


@contextmanager
def otel_instrumented() -> Iterator[None]:
    from opentelemetry.instrumentation.kafka import KafkaInstrumentor

    KafkaInstrumentor().instrument()
    try:
        yield
    finally:
        KafkaInstrumentor().uninstrument()


@contextmanager
def nothing() -> Iterator[None]:
    yield


VARIANTS: dict[str, tuple[Callable[..., Any], Callable[..., Any], Callable[[], Any]]] = {
    "plain": (KafkaProducer, KafkaConsumer, nothing),
    "plain + static header": (StaticHeaderProducer, KafkaConsumer, nothing),
    "tracectx span": (TracedProducer, TracedConsumer, nothing),
    "tracectx propagate": (
        lambda **kw: TracedProducer(send_mode=SendMode.PROPAGATE, **kw),
        TracedConsumer,
        nothing,
    ),
    "otel-kafka-python": (KafkaProducer, KafkaConsumer, otel_instrumented),
}


def one_round(bootstrap: str, variant: str, messages: int) -> tuple[float, float]:
    make_producer, make_consumer, wrap = VARIANTS[variant]
    topic = f"bench-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    admin.close()
    tracer = trace.get_tracer("bench")
    with wrap():
        producer = make_producer(bootstrap_servers=bootstrap, linger_ms=5)
        producer.send(topic, PAYLOAD).get(10)  # connected, metadata cached
        with tracer.start_as_current_span("request"):
            start = time.perf_counter()
            for _ in range(messages):
                producer.send(topic, PAYLOAD)
            producer.flush()
            produce = (time.perf_counter() - start) / messages
        producer.close()
        consumer = make_consumer(
            bootstrap_servers=bootstrap, auto_offset_reset="earliest", consumer_timeout_ms=10000
        )
        consumer.assign([TopicPartition(topic, 0)])
        next(consumer)  # the warm-up record
        start = time.perf_counter()
        seen = 0
        for _ in consumer:
            seen += 1
            if seen == messages:
                break
        consume = (time.perf_counter() - start) / messages
        consumer.close()
    assert seen == messages, f"{variant}: consumed {seen} of {messages}"
    return produce * 1e6, consume * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Discard(), max_queue_size=65536))
    trace.set_tracer_provider(provider)
    samples: dict[str, list[tuple[float, float]]] = {v: [] for v in VARIANTS}
    with tansu_broker() as broker:
        for _ in range(args.rounds):
            for variant in VARIANTS:
                samples[variant].append(one_round(broker.address, variant, args.messages))
    rows = []
    for case, index in (("produce (µs/msg)", 0), ("consume (µs/msg)", 1)):
        for variant, runs in samples.items():
            us = statistics.median(r[index] for r in runs)
            rows.append({"case": case, "variant": variant, "us_per_op": us})
    out = report("kafka", rows, baseline="plain")
    print(f"\n{args.messages} messages x {args.rounds} rounds; throughput ratio = 1 / ratio")
    otel = {r["case"]: r["us_per_op"] for r in out["rows"] if r["variant"] == "otel-kafka-python"}
    for row in out["rows"]:
        if row["variant"].startswith("tracectx"):
            speedup = otel[row["case"]] / row["us_per_op"]
            print(f"{row['case']:<20}{row['variant']:<22} {speedup:.2f}x the OTel throughput")


if __name__ == "__main__":
    main()
