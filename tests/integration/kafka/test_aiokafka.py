"""aiokafka against the tansu broker: the kafka-python contract, from the shared core —
send spans or propagation only, process spans current for the handler (context restored
after), getmany receive spans with links (none when empty), DLQ envelope, hostile headers
counted once, one traceparent after forwarding, the instrumentor undone exactly."""

from __future__ import annotations

import asyncio

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from tests.helpers import all_named, by_name, current_ids, hex_span, hex_trace
from tests.integration.kafka.rejections import Rejections
from tracectx import ErrorKind, bind, bound, configure, get_bound, new_error, traced
from tracectx import semconv as sc
from tracectx_kafka import dlq_error, send_to_dlq, traced_records

aiokafka = pytest.importorskip("aiokafka")
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer  # noqa: E402
from aiokafka.structs import TopicPartition  # noqa: E402

from tracectx_kafka.aiokafka import (  # noqa: E402
    AIOKafkaInstrumentor,
    TracedAIOKafkaConsumer,
    TracedAIOKafkaProducer,
)

pytestmark = pytest.mark.integration
STALE = b"00-11111111111111111111111111111111-2222222222222222-01"


async def started(client):
    await client.start()
    return client


async def consumer_for(bootstrap: str, topic: str, cls=TracedAIOKafkaConsumer, **kw):
    consumer = await started(cls(bootstrap_servers=bootstrap, auto_offset_reset="earliest", **kw))
    consumer.assign([TopicPartition(topic, 0)])
    return consumer


async def produce(bootstrap: str, topic: str, n: int, **kw) -> None:
    producer = await started(TracedAIOKafkaProducer(bootstrap_servers=bootstrap, **kw))
    for i in range(n):
        with traced(f"request-{i}"), bound(order=f"o{i}"):
            await producer.send_and_wait(topic, f"m{i}".encode(), key=f"k{i}".encode())
    await producer.stop()


async def read_raw(bootstrap: str, topic: str, n: int) -> list:
    consumer = await consumer_for(bootstrap, topic, cls=AIOKafkaConsumer)
    got: list = []
    for _ in range(50):
        for records in (await consumer.getmany(timeout_ms=200)).values():
            got.extend(records)
        if len(got) >= n:
            break
    await consumer.stop()
    assert len(got) == n
    return got


def traceparents(record) -> list[bytes]:
    return [v for k, v in record.headers if k == "traceparent"]


async def test_send_span_semconv_and_one_traceparent(spans, bootstrap, make_topic):
    topic = make_topic()
    producer = await started(
        TracedAIOKafkaProducer(bootstrap_servers=bootstrap, client_id="checkout")
    )
    with traced("request"):
        await producer.send_and_wait(topic, b"v", key=b"order-7", headers=[("traceparent", STALE)])
        future = await producer.send(topic, b"w", headers=[("app", b"1")])
        await future
    await producer.stop()
    request = by_name(spans, "request")
    sends = all_named(spans, f"send {topic}")
    assert len(sends) == 2
    send = sends[0]
    assert send.kind is SpanKind.PRODUCER and send.parent.span_id == request.context.span_id
    host, port = bootstrap.split(":")
    assert send.attributes["messaging.kafka.message.key"] == "order-7"
    assert send.attributes["server.address"] == host
    assert send.attributes["server.port"] == int(port)
    assert send.attributes["messaging.client.id"] == "checkout"
    assert "messaging.kafka.message.key" not in sends[1].attributes
    records = await read_raw(bootstrap, topic, 2)
    for record, span in zip(records, sends, strict=True):
        (tp,) = traceparents(record)  # the stale one replaced, not appended to
        assert tp.decode().split("-")[1:3] == [hex_trace(span), hex_span(span)]
    assert ("app", b"1") in records[1].headers


async def test_propagate_mode_and_concurrent_tasks(spans, bootstrap, make_topic):
    """No span; each task's own context travels (the re-entry guard is per task)."""
    topic = make_topic()
    producer = await started(
        TracedAIOKafkaProducer(bootstrap_servers=bootstrap, send_mode="propagate")
    )

    async def one(name: str) -> tuple[str, str]:
        with traced(name):
            await asyncio.sleep(0)
            await producer.send_and_wait(topic, name.encode())
            return current_ids()

    ids = await asyncio.gather(*(one(f"task-{i}") for i in range(5)))
    await producer.stop()
    assert not all_named(spans, f"send {topic}")
    records = await read_raw(bootstrap, topic, 5)
    got = {r.value.decode(): tuple(traceparents(r)[0].decode().split("-")[1:3]) for r in records}
    assert got == {f"task-{i}": ids[i] for i in range(5)}


async def test_iteration_runs_handler_in_producer_trace_and_restores(spans, bootstrap, make_topic):
    topic = make_topic()
    configure(propagate_keys=["order"], baggage_allowlist=["order"])
    await produce(bootstrap, topic, 3)
    consumer = await consumer_for(bootstrap, topic, group_id="billing")
    seen = []
    with traced("app"):
        bind(request="r1")
        before = current_ids()
        async for record in consumer:
            bind(order_id=record.value.decode())  # a plain bind() in the handler
            with traced("handle"):
                seen.append((current_ids()[0], get_bound().get("order")))
            if record.offset == 2:
                break
        await consumer.getmany(timeout_ms=100)  # ends the last record's span
        assert current_ids() == before
        assert get_bound() == {"request": "r1"}
        await consumer.stop()
    process = sorted(
        all_named(spans, f"process {topic}"), key=lambda s: s.attributes["messaging.kafka.offset"]
    )
    assert len(process) == 3
    for i, span in enumerate(process):
        send = [s for s in all_named(spans, f"send {topic}") if hex_trace(s) == hex_trace(span)]
        assert span.kind is SpanKind.CONSUMER
        assert span.parent.span_id == send[0].context.span_id
        assert span.attributes["messaging.consumer.group.name"] == "billing"
        assert span.attributes["messaging.kafka.message.key"] == f"k{i}"
        assert "server.address" in span.attributes
        assert seen[i] == (hex_trace(by_name(spans, f"request-{i}")), f"o{i}")
    assert not all_named(spans, f"getmany {topic}")  # the empty getmany: no span


async def test_getmany_receive_span_links_and_traced_records(spans, bootstrap, make_topic):
    topic = make_topic()
    await produce(bootstrap, topic, 3)
    consumer = await consumer_for(bootstrap, topic, link_to_producer=True)
    batch: dict = {}
    with traced("batch-job"):
        job = current_ids()[0]
        for _ in range(50):
            for tp, records in (await consumer.getmany(timeout_ms=200)).items():
                batch.setdefault(tp, []).extend(records)
            if sum(map(len, batch.values())) >= 3:
                break
        for record in traced_records(batch, consumer):
            assert current_ids()[0] == job  # linked to the producer, a child of the job
            assert record.value.startswith(b"m")
    await consumer.stop()
    polls = all_named(spans, f"getmany {topic}")
    assert polls and all(p.kind is SpanKind.CLIENT for p in polls)
    assert sum(p.attributes["messaging.batch.message_count"] for p in polls) == 3
    assert {link.context.span_id for p in polls for link in p.links} == {
        s.context.span_id for s in all_named(spans, f"send {topic}")
    }
    process = all_named(spans, f"process {topic}")
    assert len(process) == 3
    assert all(len(p.links) == 1 for p in process)


async def test_error_escaping_async_with_is_recorded(spans, bootstrap, make_topic):
    topic = make_topic()
    await produce(bootstrap, topic, 1)
    consumer = TracedAIOKafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    with pytest.raises(ValueError):
        async with consumer:
            consumer.assign([TopicPartition(topic, 0)])
            async for _record in consumer:
                raise ValueError("bad payload")
    span = by_name(spans, f"process {topic}")
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[sc.ATTR_ROLE] == sc.ROLE_ORIGIN


async def test_dlq_round_trip(spans, bootstrap, make_topic):
    topic, dlq = make_topic(), make_topic()
    await produce(bootstrap, topic, 1)
    consumer = await consumer_for(bootstrap, topic)
    producer = await started(TracedAIOKafkaProducer(bootstrap_servers=bootstrap))
    record = await consumer.getone()
    try:
        raise new_error(ErrorKind.BUSINESS, "declined", code="E42", card="4111")
    except Exception as exc:
        err = exc
        await (await send_to_dlq(producer, record, exc, dlq))
    await consumer.stop()
    await producer.stop()
    dlq_consumer = await consumer_for(bootstrap, dlq)
    dead = await dlq_consumer.getone()
    rebuilt = dlq_error(dead)
    await dlq_consumer.stop()
    assert len(traceparents(dead)) == 1
    assert (rebuilt.error_id, rebuilt.code) == (err.error_id, "E42")
    assert rebuilt.metadata["card"] == "[REDACTED]"
    failed, absorbed = by_name(spans, f"process {topic}"), by_name(spans, f"process {dlq}")
    assert absorbed.attributes[sc.ATTR_ID] == err.error_id
    assert absorbed.attributes[sc.ATTR_ROLE] == sc.ROLE_ABSORBED
    assert hex_trace(absorbed) == hex_trace(failed)


BAD = [
    [("traceparent", b"00-zzzz-not-a-trace-01")],
    [("traceparent", STALE), ("traceparent", STALE.replace(b"2222", b"3333"))],
    [("traceparent", b"\xff\xfe\x00garbage")],
    [("tracectx-error", b"{not json")],
]


@pytest.mark.parametrize("how", ["getmany+traced_records", "iteration"])
async def test_hostile_headers_refused_and_counted_once(spans, bootstrap, make_topic, how):
    topic = make_topic()
    raw = await started(AIOKafkaProducer(bootstrap_servers=bootstrap))
    for headers in BAD:
        await raw.send_and_wait(topic, b"payload", headers=headers)
    await raw.stop()
    consumer = await consumer_for(bootstrap, topic)
    with Rejections() as counted:
        if how == "iteration":
            async for record in consumer:
                assert record.value == b"payload"
                assert dlq_error(record) is None or record.offset != 3
                if record.offset == len(BAD) - 1:
                    break
        else:
            batch: list = []
            while len(batch) < len(BAD):
                for records in (await consumer.getmany(timeout_ms=200)).values():
                    batch.extend(records)
            for record in traced_records(batch, consumer):
                dlq_error(record)
        await consumer.stop()
    assert counted.delta == {
        ("kafka", "malformed_traceparent"): 1,
        ("kafka", "duplicate_header"): 1,
        ("kafka", "non_utf8_header"): 1,
        ("kafka", "corrupt_envelope"): 1,
    }
    process = all_named(spans, f"process {topic}")
    assert len(process) == len(BAD)
    assert all(p.parent is None for p in process)


async def test_delivery_failure_gets_a_deliver_span(spans, bootstrap):
    from tracectx_demo.embedded import tansu_broker

    service = tansu_broker().start()
    producer = await started(
        TracedAIOKafkaProducer(
            bootstrap_servers=service.address, request_timeout_ms=500, retry_backoff_ms=50
        )
    )
    await producer.send_and_wait("warm", b"v")
    service.stop()
    with traced("request"):
        future = await producer.send("warm", b"lost")
        assert len(all_named(spans, "send warm")) == 2  # ended at send()
        with pytest.raises(Exception):
            await asyncio.wait_for(future, 30)
    await asyncio.sleep(0)  # the done callback
    deliver = by_name(spans, "deliver warm")
    assert deliver.parent.span_id == all_named(spans, "send warm")[1].context.span_id
    assert deliver.status.status_code is StatusCode.ERROR
    assert hex_trace(deliver) == hex_trace(by_name(spans, "request"))
    await asyncio.wait_for(producer.stop(), 30)


async def test_instrumentor_with_provider_and_exact_undo(spans, bootstrap, make_topic):
    topic = make_topic()
    originals = {
        name: vars(AIOKafkaConsumer)[name] for name in ("getone", "getmany", "stop", "__aexit__")
    }
    send = AIOKafkaProducer.send
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrumentor = AIOKafkaInstrumentor()
    with pytest.raises(TypeError, match="sendmode"):
        instrumentor.instrument(sendmode="span")
    assert AIOKafkaProducer.send is send
    instrumentor.instrument(tracer_provider=provider)
    try:
        producer = await started(AIOKafkaProducer(bootstrap_servers=bootstrap))
        traced_producer = await started(TracedAIOKafkaProducer(bootstrap_servers=bootstrap))
        with traced("request"):
            await producer.send_and_wait(topic, b"a")
            await traced_producer.send_and_wait(topic, b"b")  # one span, not two
        await producer.stop()
        await traced_producer.stop()
        consumer = await consumer_for(bootstrap, topic, cls=AIOKafkaConsumer)
        await consumer.getone()
        await consumer.getone()
        await consumer.stop()
    finally:
        instrumentor.uninstrument()
    assert AIOKafkaProducer.send is send
    assert {n: vars(AIOKafkaConsumer)[n] for n in originals} == originals
    mine = exporter.get_finished_spans()
    assert [s.name for s in mine].count(f"send {topic}") == 1  # the plain producer's
    assert [s.name for s in mine].count(f"process {topic}") == 2
    assert len(all_named(spans, f"send {topic}")) == 1  # the wrapper class: global provider


async def test_context_mode_getone_restores_each_records_context_without_a_span(
    spans, bootstrap, make_topic
):
    """``record_mode="context"``: each ``getone()`` record's producer context is current in the
    task, no span; ``stop()`` restores the task's own."""
    topic = make_topic()
    await produce(bootstrap, topic, 2, send_mode="propagate")
    sent = [hex_trace(by_name(spans, f"request-{i}")) for i in range(2)]
    spans.clear()
    consumer = await consumer_for(bootstrap, topic, record_mode="context")
    seen = []
    for _ in range(2):
        await consumer.getone()
        seen.append(current_ids()[0])
    await consumer.stop()
    assert seen == sent
    assert current_ids()[0] == "0" * 32
    assert spans.get_finished_spans() == ()


@pytest.mark.parametrize("how", ["wrapper", "instrumentor"])
async def test_send_spans_carry_the_partition_aiokafka_chose(spans, bootstrap, make_topic, how):
    """No partition given: the span still says where the record went (aiokafka's partitioner
    picks it inside send(); the delivery future reports it only later)."""
    from tracectx_kafka.aiokafka import AIOKafkaInstrumentor

    topic = make_topic(partitions=4)
    instrumentor = AIOKafkaInstrumentor()
    if how == "instrumentor":
        instrumentor.instrument()
    try:
        cls = TracedAIOKafkaProducer if how == "wrapper" else AIOKafkaProducer
        producer = await started(cls(bootstrap_servers=bootstrap))
        metadata = [
            await (await producer.send(topic, b"v", key=f"k{i}".encode())) for i in range(6)
        ]
        await producer.stop()
    finally:
        if how == "instrumentor":
            instrumentor.uninstrument()
    sends = all_named(spans, f"send {topic}")
    assert [s.attributes["messaging.destination.partition.id"] for s in sends] == [
        str(m.partition) for m in metadata
    ]
    assert len({m.partition for m in metadata}) > 1  # really chosen per key, not one default
