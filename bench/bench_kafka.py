"""Kafka produce/consume cost of tracectx against a real broker (tansu, embedded), for the three
Python clients, each side by side with its plain client.

Variants, measured with `bench.harness.interleave` (rounds in rotating order, each variant's
time divided by its baseline's in the same round; wall clock, since a broker is involved):

- kafka-python: plain (baseline), tracectx propagate-only, tracectx span mode, OTel's
  kafka-python instrumentation (``opentelemetry-instrumentation-kafka-python``);
- aiokafka: plain (baseline), tracectx propagate-only, tracectx span mode;
- confluent-kafka: plain (baseline), tracectx propagate-only, tracectx span mode, OTel's
  confluent-kafka instrumentation (``opentelemetry-instrumentation-confluent-kafka``).

Beside those, for every client: ``plain + header`` (the plain client given the same
``traceparent`` header bytes by hand: the floor of propagation, what the client itself costs
for carrying the header), ``SDK span floor`` (the plain client with a bare SDK span started and
ended around each send / each record read: the floor of span mode), and ``@1%`` rows next to
every span-mode row (tracectx, OTel, the SDK floor): the provider samples
``ParentBased(TraceIdRatioBased(0.01))``; recorded variants open their request span with an
always-on provider (so ParentBased samples what is under it), the ``@1%`` ones with the global
provider, so 99 % of their runs are sampled out — the cost of a span nobody records.

On the consume side "propagate" is the consumer's ``record_mode="context"`` (each record's
producer context made current, no span; its records were sent in propagate mode) and "span"
its default (a process span per record).

Each round's ``produce`` run sends N records in a request span and waits for all of them;
its ``consume`` run reads N records (written untimed by the same variant's producer, so their
headers are that variant's) with one process span per record where the variant makes one.
Spans go to the real SDK with a batch processor and a discarding exporter.

kafka-python computes record-batch CRC32C in pure Python unless the ``crc32c`` package is
installed; install it (the ``kafka`` extra should) or kafka-python's own cost dominates.

    python -m bench.bench_kafka [--messages 5000] [--rounds 10] [--clients kafka-python,aiokafka,confluent]
"""

from __future__ import annotations

import argparse
import asyncio
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

from bench.harness import Variant, interleave, report, rows_of
from tracectx_demo.embedded import tansu_broker

PAYLOAD = b"x" * 64
RATIO = 0.01
# What a propagate-mode producer adds: one W3C traceparent (55 bytes), given by hand.
HEADER = [("traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")]
_ALWAYS = TracerProvider()  # request spans of recorded variants (see the module doc)


def request_span(sampled: bool) -> Any:
    """A run's request span: sampled for recorded variants, drawn at `RATIO` for @1% ones."""
    source = _ALWAYS if sampled else trace.get_tracer_provider()
    return source.get_tracer("bench").start_as_current_span("request")


def floor_span(name: str) -> Any:
    """The SDK floor of span mode: a bare span around one send or one record."""
    return trace.get_tracer("bench-floor").start_as_current_span(name)


class Discard(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def new_topic(bootstrap: str) -> str:
    from kafka.admin import KafkaAdminClient, NewTopic

    topic = f"bench-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    admin.close()
    return topic


class Side:
    """One variant of one client: how to make its producer/consumer, and what to switch on
    (an instrumentor) around a run."""

    def __init__(
        self,
        name: str,
        producer: Callable[[str], Any],
        consumer: Callable[[str], Any],
        on: Callable[[], object] | None = None,
        off: Callable[[], object] | None = None,
        *,
        sampled: bool = True,
        header: bool = False,
        floor: bool = False,
    ) -> None:
        self.name, self.producer, self.consumer, self.on, self.off = (
            name,
            producer,
            consumer,
            on,
            off,
        )
        self.sampled = sampled  # False: the request span is drawn at RATIO (an @1% row)
        self.header = header  # the plain client given the traceparent bytes by hand
        self.floor = floor  # the plain client with a bare SDK span per message


def with_extras(
    sides: list[Side], plain: Side, span_names: tuple[str, ...], prefix: str
) -> list[Side]:
    """`sides` plus the header floor, the SDK span floor, and an @1% twin of every span row."""
    out = [sides[0], Side(f"{prefix} plain + header", plain.producer, plain.consumer, header=True)]
    for side in sides[1:]:
        out.append(side)
        if side.name in span_names:
            twin = Side(f"{side.name} @1%", side.producer, side.consumer, side.on, side.off,
                        sampled=False)  # fmt: skip
            out.append(twin)
    out.append(Side(f"{prefix} SDK span floor", plain.producer, plain.consumer, floor=True))
    out.append(Side(f"{prefix} SDK span floor @1%", plain.producer, plain.consumer,
                    sampled=False, floor=True))  # fmt: skip
    return out


# --- kafka-python ---------------------------------------------------------------------------


def kafka_python_sides() -> list[Side]:
    from kafka import KafkaConsumer, KafkaProducer
    from opentelemetry.instrumentation.kafka import KafkaInstrumentor as OTelKafka

    from tracectx_kafka import TracedConsumer, TracedProducer

    otel = OTelKafka()

    def consumer(cls: Any, **kw: Any) -> Callable[[str], Any]:
        return lambda b: cls(bootstrap_servers=b, auto_offset_reset="earliest", **kw)

    sides = [
        Side(
            "kafka-python plain",
            lambda b: KafkaProducer(bootstrap_servers=b, linger_ms=5),
            consumer(KafkaConsumer),
        ),
        Side(
            "kafka-python tracectx propagate",
            lambda b: TracedProducer(bootstrap_servers=b, linger_ms=5, send_mode="propagate"),
            consumer(TracedConsumer, record_mode="context"),
        ),
        Side(
            "kafka-python tracectx span",
            lambda b: TracedProducer(bootstrap_servers=b, linger_ms=5),
            consumer(TracedConsumer),
        ),
        Side(
            "kafka-python otel",
            lambda b: KafkaProducer(bootstrap_servers=b, linger_ms=5),
            consumer(KafkaConsumer),
            otel.instrument,
            otel.uninstrument,
        ),
    ]
    spans = ("kafka-python tracectx span", "kafka-python otel")
    return with_extras(sides, sides[0], spans, "kafka-python")


def kafka_python_produce(side: Side, bootstrap: str, topic: str, n: int) -> None:
    producer = side.producer(bootstrap)
    with request_span(side.sampled):
        if side.floor:
            for _ in range(n):
                with floor_span("send"):
                    producer.send(topic, PAYLOAD)
        elif side.header:
            for _ in range(n):
                producer.send(topic, PAYLOAD, headers=HEADER)
        else:
            for _ in range(n):
                producer.send(topic, PAYLOAD)
        producer.flush()
    producer.close()


def kafka_python_consume(side: Side, bootstrap: str, topic: str, n: int) -> None:
    from kafka import TopicPartition

    consumer = side.consumer(bootstrap)
    consumer.assign([TopicPartition(topic, 0)])
    if side.floor:
        records = iter(consumer)
        for _ in range(n):
            with floor_span("process"):
                next(records)
    else:
        for seen, _record in enumerate(consumer, 1):
            if seen == n:
                break
    consumer.close()


# --- aiokafka -------------------------------------------------------------------------------


def aiokafka_sides() -> list[Side]:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    from tracectx_kafka.aiokafka import TracedAIOKafkaConsumer, TracedAIOKafkaProducer

    def consumer(cls: Any, **kw: Any) -> Callable[[str], Any]:
        return lambda b: cls(bootstrap_servers=b, auto_offset_reset="earliest", **kw)

    sides = [
        Side(
            "aiokafka plain",
            lambda b: AIOKafkaProducer(bootstrap_servers=b, linger_ms=5),
            consumer(AIOKafkaConsumer),
        ),
        Side(
            "aiokafka tracectx propagate",
            lambda b: TracedAIOKafkaProducer(
                bootstrap_servers=b, linger_ms=5, send_mode="propagate"
            ),
            consumer(TracedAIOKafkaConsumer, record_mode="context"),
        ),
        Side(
            "aiokafka tracectx span",
            lambda b: TracedAIOKafkaProducer(bootstrap_servers=b, linger_ms=5),
            consumer(TracedAIOKafkaConsumer),
        ),
    ]
    return with_extras(sides, sides[0], ("aiokafka tracectx span",), "aiokafka")


def aiokafka_produce(side: Side, bootstrap: str, topic: str, n: int) -> None:
    async def run() -> None:
        producer = side.producer(bootstrap)
        await producer.start()
        with request_span(side.sampled):
            futures = []
            for _ in range(n):
                if side.floor:
                    with floor_span("send"):
                        futures.append(await producer.send(topic, PAYLOAD))
                elif side.header:
                    futures.append(await producer.send(topic, PAYLOAD, headers=HEADER))
                else:
                    futures.append(await producer.send(topic, PAYLOAD))
            await asyncio.gather(*futures)
        await producer.stop()

    asyncio.run(run())


def aiokafka_consume(side: Side, bootstrap: str, topic: str, n: int) -> None:
    from aiokafka.structs import TopicPartition

    async def run() -> None:
        consumer = side.consumer(bootstrap)
        await consumer.start()
        consumer.assign([TopicPartition(topic, 0)])
        if side.floor:
            for _ in range(n):
                with floor_span("process"):
                    await consumer.__anext__()
        else:
            seen = 0
            async for _ in consumer:
                seen += 1
                if seen == n:
                    break
        await consumer.stop()

    asyncio.run(run())


# --- confluent-kafka ------------------------------------------------------------------------


def confluent_sides() -> list[Side]:
    from confluent_kafka import Consumer, Producer
    from opentelemetry.instrumentation.confluent_kafka import ConfluentKafkaInstrumentor as OTel

    from tracectx_kafka.confluent import TracedConsumer, TracedProducer

    def conf(b: str) -> dict[str, Any]:
        return {"bootstrap.servers": b, "linger.ms": 5}

    def consumer(cls: Any, **kw: Any) -> Callable[[str], Any]:
        return lambda b: cls({"bootstrap.servers": b, "group.id": "bench"}, **kw)

    sides = [
        Side("confluent plain", lambda b: Producer(conf(b)), consumer(Consumer)),
        Side(
            "confluent tracectx propagate",
            lambda b: TracedProducer(conf(b), send_mode="propagate"),
            consumer(TracedConsumer, record_mode="context"),
        ),
        Side(
            "confluent tracectx span", lambda b: TracedProducer(conf(b)), consumer(TracedConsumer)
        ),
        Side(  # OTel's instance proxies (its instrument() swaps the module's classes)
            "confluent otel",
            lambda b: OTel.instrument_producer(Producer(conf(b))),
            lambda b: OTel.instrument_consumer(
                Consumer({"bootstrap.servers": b, "group.id": "bench"})
            ),
        ),
    ]
    spans = ("confluent tracectx span", "confluent otel")
    return with_extras(sides, sides[0], spans, "confluent")


def confluent_produce(side: Side, bootstrap: str, topic: str, n: int) -> None:
    producer = side.producer(bootstrap)
    with request_span(side.sampled):
        for i in range(n):
            if side.floor:
                with floor_span("send"):
                    producer.produce(topic, PAYLOAD)
            elif side.header:
                producer.produce(topic, PAYLOAD, headers=HEADER)
            else:
                producer.produce(topic, PAYLOAD)
            if i % 1000 == 999:
                producer.poll(0)
        producer.flush()


def confluent_consume(side: Side, bootstrap: str, topic: str, n: int) -> None:
    from confluent_kafka import TopicPartition

    consumer = side.consumer(bootstrap)
    # OTel's ProxiedConsumer forwards no assign(): give it to the consumer it wraps
    original = getattr(consumer, "original_consumer", None)
    (original() if original is not None else consumer).assign([TopicPartition(topic, 0, 0)])
    seen = 0
    while seen < n:
        if side.floor:
            with floor_span("process"):
                message = consumer.poll(1.0)
        else:
            message = consumer.poll(1.0)
        if message is not None and message.error() is None:
            seen += 1
    consumer.close()


CLIENTS: dict[str, tuple[Callable[[], list[Side]], Callable[..., None], Callable[..., None]]] = {
    "kafka-python": (kafka_python_sides, kafka_python_produce, kafka_python_consume),
    "aiokafka": (aiokafka_sides, aiokafka_produce, aiokafka_consume),
    "confluent": (confluent_sides, confluent_produce, confluent_consume),
}


def variants(
    sides: list[Side],
    bootstrap: str,
    n: int,
    produce: Callable[..., None],
    consume: Callable[..., None],
    case: str,
) -> list[Variant]:
    """`interleave` variants for `case` (``produce`` or ``consume``); the first is the baseline.
    Topic creation (and, for ``consume``, writing the records) happens in the untimed setup."""
    out = []
    for side in sides:
        topic: list[str] = []

        def setup(side: Side = side, topic: list[str] = topic) -> None:
            topic[:] = [new_topic(bootstrap)]
            if side.on is not None:
                side.on()
            if case == "consume":
                produce(side, bootstrap, topic[0], n)

        def teardown(side: Side = side) -> None:
            if side.off is not None:
                side.off()

        def run(ops: int, side: Side = side, topic: list[str] = topic) -> None:
            (produce if case == "produce" else consume)(side, bootstrap, topic[0], ops)

        out.append(Variant(side.name, run, setup, teardown))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--clients", default=",".join(CLIENTS))
    args = parser.parse_args()
    provider = TracerProvider(sampler=ParentBased(TraceIdRatioBased(RATIO)))
    _ALWAYS.add_span_processor(BatchSpanProcessor(Discard(), max_queue_size=65536))
    provider.add_span_processor(BatchSpanProcessor(Discard(), max_queue_size=65536))
    trace.set_tracer_provider(provider)
    rows: list[dict[str, Any]] = []
    with tansu_broker() as broker:
        for client in args.clients.split(","):
            make_sides, produce, consume = CLIENTS[client]
            sides = make_sides()
            for case in ("produce", "consume"):
                outcomes = interleave(
                    variants(sides, broker.address, args.messages, produce, consume, case),
                    args.messages,
                    rounds=args.rounds,
                    clock="wall",
                    warmup_rounds=1,
                )
                rows.extend(rows_of(f"{client} {case}", outcomes, clock="wall"))
    report("kafka", rows, baseline="kafka-python plain")
    print(
        f"\n{args.messages} messages x {args.rounds} rounds; ratios are to each client's plain run"
    )


if __name__ == "__main__":
    main()
