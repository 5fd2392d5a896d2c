"""The span-mode shortcuts give what the general paths give (no broker): a lone ``traceparent``
parsed without the propagator, a consumer's per-topic process attributes, and the record
fields read in one pass."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from tests.integration.kafka.rejections import Rejections
from tracectx_kafka.attributes import ProcessAttributes, record_attributes
from tracectx_kafka.headers import _parsed_traceparent, context_from_headers, header_map
from tracectx_kafka.records import RecordInfo, record_info

pytestmark = pytest.mark.integration

TP = b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def otel_span_context(value: bytes) -> Any:
    ctx = TraceContextTextMapPropagator().extract({"traceparent": value.decode()})
    return trace.get_current_span(ctx).get_span_context()


@pytest.mark.parametrize(
    "value",
    [
        TP,
        TP[:-2] + b"00",
        TP[:-2] + b"03",
        TP[:-2] + b"ff",
        b"00-" + b"f" * 32 + b"-" + b"f" * 16 + b"-01",
    ],
)
def test_a_usual_traceparent_is_parsed_as_the_propagator_reads_it(value: bytes) -> None:
    ctx = _parsed_traceparent(value)
    assert ctx is not None and list(ctx) == list(trace.set_span_in_context(trace.INVALID_SPAN))
    span = trace.get_current_span(ctx)
    assert type(span) is NonRecordingSpan
    parsed, read = span.get_span_context(), otel_span_context(value)
    assert parsed == read and parsed.is_remote and parsed.is_valid
    assert parsed.trace_flags == read.trace_flags and not parsed.trace_state


@pytest.mark.parametrize(
    "value",
    [
        TP.upper(),
        b" " + TP,
        TP + b" ",
        TP + b"-extra",
        b"01" + TP[2:],
        b"ff" + TP[2:],
        b"00-" + b"0" * 32 + TP[35:],
        TP[:36] + b"0" * 16 + TP[52:],
        TP[:-1],
        TP.replace(b"-", b"_"),
        b"00-+af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        b"00-0af7651916cd43dd_448eb211c80319c-b7ad6b7169203331-01",
    ],
)
def test_anything_else_is_left_to_the_propagator(value: bytes) -> None:
    assert _parsed_traceparent(value) is None
    # and the general path still reads it as the propagator does
    ctx = context_from_headers([("traceparent", value)])
    assert trace.get_current_span(ctx).get_span_context() == otel_span_context(value)


def test_each_new_traceparent_gives_the_propagators_context_and_repeats_are_kept() -> None:
    for i in range(3000):  # past the kept maximum: the store is emptied, not grown
        value = f"00-{0xABC0000 + i:032x}-{0xDEF000 + i:016x}-0{i % 2}".encode()
        ctx = context_from_headers([("traceparent", value)])
        general = context_from_headers(header_map([("traceparent", value)]))
        assert trace.get_current_span(ctx).get_span_context() == otel_span_context(value)
        assert list(ctx) == list(general)
        assert context_from_headers([("traceparent", bytes(bytearray(value)))]) is ctx


def test_a_refused_lone_traceparent_is_counted_on_every_record() -> None:
    zero = b"00-" + b"0" * 32 + TP[35:]
    with Rejections() as counted:
        for _ in range(3):
            context_from_headers([("traceparent", zero)])
            context_from_headers([("traceparent", TP.upper())])
    assert sum(counted.delta.values()) == 6


CLIENT = {"server.address": "h", "server.port": 9092, "messaging.consumer.group.name": "g"}


@pytest.mark.parametrize("client", [None, {}, CLIENT])
@pytest.mark.parametrize(
    ("topic", "partition", "offset", "key", "tombstone"),
    [
        ("orders", 0, 5, None, False),
        ("orders", 3, 0, b"k", True),
        ("orders", None, None, "text", False),
        ("orders", 1, 2, b"\xff", False),
        ("orders", 1, 2, 7, False),
        (None, 1, 2, None, False),
        ("other", True, 9, b"x" * 2000, False),
    ],
)
def test_process_attributes_are_record_attributes(
    client: Any, topic: Any, partition: Any, offset: Any, key: Any, tombstone: bool
) -> None:
    attributes = ProcessAttributes(client)
    for _ in range(2):  # built, then from the kept topic
        name, attrs = attributes.of(topic, partition, offset, key, tombstone)
        assert name == f"process {topic}"
        assert attrs == record_attributes(
            topic, partition, offset, key, client, tombstone=tombstone
        )
    attrs["messaging.kafka.offset"] = -1  # a caller's dict is its own
    assert attributes.of(topic, partition, offset, key, tombstone)[1] == record_attributes(
        topic, partition, offset, key, client, tombstone=tombstone
    )


def test_record_info_takes_headers_read_already_and_reads_accessors_once() -> None:
    calls: list[str] = []

    class Message:  # a confluent-kafka Message's shape: accessor methods
        def topic(self) -> str:
            calls.append("topic")
            return "t"

        def partition(self) -> int:
            return 1

        def offset(self) -> int:
            return 2

        def key(self) -> bytes:
            return b"k"

        def headers(self) -> list[Any]:
            calls.append("headers")
            return [("traceparent", TP)]

        def value(self) -> None:
            return None

    headers = [("traceparent", TP)]
    assert record_info(Message(), headers) == RecordInfo("t", 1, 2, b"k", headers, True)
    assert calls == ["topic"]
    assert record_info(Message()) == RecordInfo("t", 1, 2, b"k", headers, True)
    assert sorted(calls) == ["headers", "topic", "topic"]
