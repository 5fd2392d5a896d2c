"""Instructions per Kafka message, plain client vs tracectx, counted with callgrind against the
embedded tansu broker (wall clock on these shared cores is too noisy for a 10 % target).

Each measurement runs one client process under ``valgrind --tool=callgrind`` twice, sending or
reading N and 2N messages; (instructions(2N) - instructions(N)) / N is the cost per message,
start-up (imports, connecting) cancelled out. All threads of the client process count (kafka-
python's sender thread, aiokafka's event loop). The broker runs outside valgrind.

Variants per client and side (as in `bench.bench_kafka`):

- produce: ``plain`` (the plain producer), ``plain-headers`` (the plain producer given the
  same ``traceparent`` header bytes by hand: the floor of propagation), ``propagate`` (tracectx
  ``send_mode="propagate"``), ``span`` (tracectx span mode), ``span-1%`` (span mode under a
  request span that was sampled out: what 99 % of sends cost at 1 % ParentBased sampling),
  ``otel`` (OTel's instrumentation of the client, kafka-python and confluent-kafka); each sends
  inside one request span, as the bench does;
- consume: ``plain`` (the plain consumer reading records a plain producer wrote),
  ``plain-headers`` (the plain consumer reading records with a ``traceparent`` header: what
  the client itself costs for the header), ``context`` (tracectx ``record_mode="context"``
  reading records a propagate-mode producer wrote), ``span`` (a process span per record),
  ``span-1%`` (span mode reading records of a sampled-out producer), ``otel``, and
  ``otel-sampled``: OTel's with every root span sampled (confluent-kafka's instrumentation
  starts a new root ``recv`` span per poll, parent of its process span, so at the bench's 1 %
  its spans are almost never recorded; this variant records them, as tracectx's are).

Also an ``--offline`` mode: only tracectx's per-message code (a consumer's ``__next__`` hook on
a ready record; the send wrapper around a send that does nothing), no broker and no client
I/O, for iterating on the hot path.

    python -m bench.kafka_instructions [--clients kafka-python,aiokafka,confluent] [--n 2000]
    python -m bench.kafka_instructions --offline [--n 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

PAYLOAD = b"x" * 64
VALGRIND = "/usr/bin/valgrind"
SIDES = {
    "produce": ("plain", "plain-headers", "propagate", "span", "span-1%", "otel"),
    "consume": ("plain", "plain-headers", "context", "span", "span-1%", "otel", "otel-sampled"),
}
HEADER = [("traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")]
# What writes the records each consume variant reads.
WRITER = {"plain": "plain", "plain-headers": "plain-headers", "context": "propagate",
          "span": "span", "span-1%": "span-1%", "otel": "otel", "otel-sampled": "otel"}  # fmt: skip


def provider(root_ratio: float = 0.01) -> None:
    """The bench's SDK setup: a real provider, batch processor, discarding exporter; root spans
    sampled at `root_ratio`, children as their parent."""
    from collections.abc import Sequence

    from opentelemetry import trace
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        SpanExporter,
        SpanExportResult,
    )

    class Discard(SpanExporter):
        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    p = TracerProvider(sampler=ParentBased(TraceIdRatioBased(root_ratio)))
    p.add_span_processor(BatchSpanProcessor(Discard(), max_queue_size=65536))
    trace.set_tracer_provider(p)


# --- one client process: produce or consume n messages ---------------------------------------


def request(variant: str) -> Any:
    """The request span a producer sends in: sampled (span ids chosen for determinism), or,
    for ``span-1%``, one that was not sampled."""
    from opentelemetry import trace
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

    flags = TraceFlags(0 if variant == "span-1%" else 1)
    parent = NonRecordingSpan(SpanContext(0xABC, 0xDEF, is_remote=False, trace_flags=flags))
    return trace.use_span(parent)


def produce(client: str, variant: str, bootstrap: str, topic: str, n: int) -> None:
    traced = variant in ("propagate", "span", "span-1%")
    mode = "propagate" if variant == "propagate" else "span"
    headers = {"headers": HEADER} if variant == "plain-headers" else {}
    with request(variant):
        if client == "kafka-python":
            from kafka import KafkaProducer

            from tracectx_kafka import TracedProducer

            if variant == "otel":
                from opentelemetry.instrumentation.kafka import KafkaInstrumentor

                KafkaInstrumentor().instrument()
            kp: Any = (
                TracedProducer(bootstrap_servers=bootstrap, linger_ms=5, send_mode=mode)
                if traced
                else KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
            )
            for _ in range(n):
                kp.send(topic, PAYLOAD, **headers)
            kp.flush()
            kp.close()
        elif client == "aiokafka":
            from aiokafka import AIOKafkaProducer

            from tracectx_kafka.aiokafka import TracedAIOKafkaProducer

            async def run() -> None:
                ap: Any = (
                    TracedAIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, send_mode=mode)
                    if traced
                    else AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
                )
                await ap.start()
                futures = [await ap.send(topic, PAYLOAD, **headers) for _ in range(n)]
                await asyncio.gather(*futures)
                await ap.stop()

            asyncio.run(run())
        else:
            from confluent_kafka import Producer

            from tracectx_kafka.confluent import TracedProducer as CTracedProducer

            conf = {"bootstrap.servers": bootstrap, "linger.ms": 5}
            cp: Any = CTracedProducer(conf, send_mode=mode) if traced else Producer(conf)
            if variant == "otel":
                from opentelemetry.instrumentation.confluent_kafka import (
                    ConfluentKafkaInstrumentor,
                )

                cp = ConfluentKafkaInstrumentor.instrument_producer(cp)
            for i in range(n):
                cp.produce(topic, PAYLOAD, **headers)
                if i % 1000 == 999:
                    cp.poll(0)
            cp.flush()


def consume(client: str, variant: str, bootstrap: str, topic: str, n: int) -> None:
    traced = variant in ("context", "span", "span-1%")
    mode = "context" if variant == "context" else "span"
    if client == "kafka-python":
        from kafka import KafkaConsumer, TopicPartition

        from tracectx_kafka import TracedConsumer

        if variant.startswith("otel"):
            from opentelemetry.instrumentation.kafka import KafkaInstrumentor

            KafkaInstrumentor().instrument()
        kw: dict[str, Any] = {"bootstrap_servers": bootstrap, "auto_offset_reset": "earliest"}
        kc: Any = TracedConsumer(record_mode=mode, **kw) if traced else KafkaConsumer(**kw)
        kc.assign([TopicPartition(topic, 0)])
        for seen, _record in enumerate(kc, 1):
            if seen == n:
                break
        kc.close()
    elif client == "aiokafka":
        from aiokafka import AIOKafkaConsumer
        from aiokafka.structs import TopicPartition as ATopicPartition

        from tracectx_kafka.aiokafka import TracedAIOKafkaConsumer

        async def run() -> None:
            akw: dict[str, Any] = {"bootstrap_servers": bootstrap, "auto_offset_reset": "earliest"}
            ac: Any = (
                TracedAIOKafkaConsumer(record_mode=mode, **akw)
                if traced
                else AIOKafkaConsumer(**akw)
            )
            await ac.start()
            ac.assign([ATopicPartition(topic, 0)])
            seen = 0
            async for _ in ac:
                seen += 1
                if seen == n:
                    break
            await ac.stop()

        asyncio.run(run())
    else:
        from confluent_kafka import Consumer
        from confluent_kafka import TopicPartition as CTopicPartition

        from tracectx_kafka.confluent import TracedConsumer as CTracedConsumer

        conf = {"bootstrap.servers": bootstrap, "group.id": "bench"}
        cc: Any = CTracedConsumer(conf, record_mode=mode) if traced else Consumer(conf)
        cc.assign([CTopicPartition(topic, 0, 0)])
        if variant.startswith("otel"):
            from opentelemetry.instrumentation.confluent_kafka import ConfluentKafkaInstrumentor

            cc = ConfluentKafkaInstrumentor.instrument_consumer(cc)
        seen = 0
        while seen < n:
            message = cc.poll(1.0)
            if message is not None and message.error() is None:
                seen += 1
        cc.close()


# --- the driver -------------------------------------------------------------------------------


def new_topic(bootstrap: str) -> str:
    from kafka.admin import KafkaAdminClient, NewTopic

    topic = f"instr-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    admin.close()
    return topic


def instructions(args: list[str]) -> int:
    """Total instructions (all threads) of ``python -m bench.kafka_instructions <args>``."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "cg.out")
        subprocess.run(
            [
                VALGRIND,
                "--tool=callgrind",
                f"--callgrind-out-file={out}",
                sys.executable,
                "-m",
                "bench.kafka_instructions",
                *args,
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        text = Path(out).read_text()
    found = re.search(r"^(?:summary|totals): (\d+)", text, re.M)
    assert found, "no total in the callgrind output"
    return int(found.group(1))


def per_message(child: list[str], n: int) -> float:
    return (instructions([*child, "--n", str(2 * n)]) - instructions([*child, "--n", str(n)])) / n


def measure(clients: list[str], n: int, sides: list[str], variants: list[str]) -> None:
    from tracectx_demo.embedded import tansu_broker

    with tansu_broker() as broker:
        b = broker.address
        for client in clients:
            results: dict[str, float] = {}
            for side in sides:
                for variant in SIDES[side]:
                    if variants and variant not in variants:
                        continue
                    if variant.startswith("otel") and client == "aiokafka":
                        continue  # no OTel instrumentation of aiokafka installed
                    child = ["--child", side, "--client", client, "--variant", variant]
                    if side == "consume":
                        # each count reads its own topic, written untimed beforehand
                        topics = []
                        for count in (n, 2 * n):
                            topic = new_topic(b)
                            provider()
                            # in a child: an instrumentor (otel) must not stay installed here
                            subprocess.run(
                                [sys.executable, "-m", "bench.kafka_instructions", "--child",
                                 "produce", "--client", client, "--variant", WRITER[variant],
                                 "--bootstrap", b, "--topic", topic, "--n", str(count)],
                                check=True,
                            )  # fmt: skip
                            topics.append(topic)
                        low = instructions([*child, "--bootstrap", b, "--topic", topics[0],
                                            "--n", str(n)])  # fmt: skip
                        high = instructions([*child, "--bootstrap", b, "--topic", topics[1],
                                             "--n", str(2 * n)])  # fmt: skip
                        cost = (high - low) / n
                    else:
                        low = instructions(
                            [*child, "--bootstrap", b, "--topic", new_topic(b), "--n", str(n)]
                        )
                        high = instructions(
                            [*child, "--bootstrap", b, "--topic", new_topic(b), "--n", str(2 * n)]
                        )
                        cost = (high - low) / n
                    results[f"{side} {variant}"] = cost
                    print(f"{client:13} {side:8} {variant:14} {cost:10.0f} instructions/message")
                    sys.stdout.flush()
            for side in sides:
                base = results.get(f"{side} plain")
                for variant in SIDES[side][1:]:
                    key = f"{side} {variant}"
                    if base and key in results:
                        print(f"{client:13} {side:8} {variant:14} x{results[key] / base:.3f} plain")
                prop = results.get(f"{side} {'propagate' if side == 'produce' else 'context'}")
                if prop and f"{side} span-1%" in results:
                    ratio = results[f"{side} span-1%"] / prop
                    print(f"{client:13} {side:8} span-1%        x{ratio:.3f} propagate-only")


# --- offline: tracectx's own per-message code only --------------------------------------------


def offline(n: int, what: str) -> None:
    """Run `what` (``next``: a context-mode consumer's ``__next__`` hook; ``span``: a span-mode
    one, on records of sampled senders, each with its own ``traceparent``, as span-mode sends
    write; ``records``: only making those records; ``send``: the propagate-mode send wrapper;
    ``none``: only the set-up) n times, no I/O."""
    from kafka.consumer.fetcher import ConsumerRecord
    from opentelemetry import trace

    from tracectx_kafka.consumer import ConsumerState, RecordMode
    from tracectx_kafka.kafka_python import traced_next, traced_send
    from tracectx_kafka.producer import SendMode

    provider()
    tracer = trace.get_tracer("bench")
    with tracer.start_as_current_span("request"):
        from tracectx_kafka.headers import encoded

        headers = encoded()
    record = ConsumerRecord("t", 0, -1, 1, 0, 0, None, PAYLOAD, headers, None, -1, 64, -1)

    class Consumer:
        pass

    consumer = Consumer()
    consumer.__dict__["_tracectx_state"] = ConsumerState(False, None, {"x": 1}, RecordMode.CONTEXT)

    def next_record() -> Any:
        return record

    def send(*args: Any, **kwargs: Any) -> None:
        return None

    if what == "next":
        for _ in range(n):
            traced_next(next_record, consumer)
    elif what in ("span", "records"):
        records = iter(
            [
                ConsumerRecord(
                    "t", 0, -1, i, 0, 0, None, PAYLOAD, [(HEADER[0][0], tp)], None, -1, 64, -1
                )
                for i, tp in enumerate(_traceparents(n))
            ]
        )
        client = {"server.address": "127.0.0.1", "server.port": 9092, "messaging.client.id": "c"}
        state = ConsumerState(False, None, client)
        consumer.__dict__["_tracectx_state"] = state
        if what == "span":
            for _ in range(n):
                traced_next(records.__next__, consumer)
            state.end_current()
    elif what == "send":
        with tracer.start_as_current_span("request"):
            for _ in range(n):
                traced_send(send, SendMode.PROPAGATE, ("t", PAYLOAD), {}, None, consumer)


def _traceparents(n: int) -> list[bytes]:
    """`n` distinct sampled ``traceparent`` values."""
    return [f"00-{0xABC0000 + i:032x}-{0xDEF000 + i:016x}-01".encode() for i in range(n)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--clients", default="kafka-python,aiokafka,confluent")
    parser.add_argument("--sides", default="produce,consume")
    parser.add_argument("--variants", default="", help="only these (default: all)")
    parser.add_argument("--offline", action="store_true")
    parser.add_argument("--child")
    parser.add_argument("--client", default="kafka-python")
    parser.add_argument("--variant", default="plain")
    parser.add_argument("--bootstrap")
    parser.add_argument("--topic")
    parser.add_argument("--what", default="")
    args = parser.parse_args()
    if args.what:  # an offline child
        offline(args.n, args.what)
    elif args.child:
        provider(1.0 if args.variant == "otel-sampled" else 0.01)
        run = produce if args.child == "produce" else consume
        run(args.client, args.variant, args.bootstrap, args.topic, args.n)
    elif args.offline:
        costs: dict[str, float] = {}
        for what in ("next", "records", "span", "send"):
            low = instructions(["--what", what, "--n", str(args.n)])
            high = instructions(["--what", what, "--n", str(2 * args.n)])
            costs[what] = (high - low) / args.n
            if what != "records":
                cost = costs[what] - costs["records"] if what == "span" else costs[what]
                print(f"offline {what:5} {cost:8.0f} instructions/message")
    else:
        only = [v for v in args.variants.split(",") if v]
        measure(args.clients.split(","), args.n, args.sides.split(","), only)


if __name__ == "__main__":
    main()
