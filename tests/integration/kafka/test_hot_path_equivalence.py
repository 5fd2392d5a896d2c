"""The per-record shortcuts give what the general paths give (no broker: the client calls are
stand-ins): kafka-python's context-mode ``__next__`` hook, the last-traceparent memo of
`context_from_headers`, and the propagate-mode send without the `sending` flag."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from tests.integration.kafka.rejections import Rejections
from tracectx_kafka.consumer import STATE, ConsumerState, RecordMode
from tracectx_kafka.headers import context_from_headers
from tracectx_kafka.kafka_python import traced_next, traced_send
from tracectx_kafka.producer import Propagated, SendMode

pytestmark = pytest.mark.integration

TP = b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
TP2 = b"00-1af7651916cd43dd8448eb211c80319c-c7ad6b7169203331-01"


class Record:
    def __init__(self, headers: Any) -> None:
        self.headers = headers


class Consumer:
    def __init__(self) -> None:
        self.__dict__[STATE] = ConsumerState(False, None, {}, RecordMode.CONTEXT)


def trace_id() -> int:
    return trace.get_current_span().get_span_context().trace_id


def test_context_mode_next_makes_each_records_context_current_and_undoes_it() -> None:
    consumer = Consumer()
    records = iter([Record([("traceparent", TP)]), Record(None), Record([("traceparent", TP2)])])
    before = otel_context.get_current()
    seen = []
    for _ in range(3):
        traced_next(lambda: next(records), consumer)
        seen.append(trace_id())
        otel_context.attach(otel_context.set_value("handler", 1))  # never detached
    assert seen == [0x0AF7651916CD43DD8448EB211C80319C, 0, 0x1AF7651916CD43DD8448EB211C80319C]
    consumer.__dict__[STATE].end_current()
    assert otel_context.get_current() is before


def test_context_mode_next_undoes_the_context_before_the_fetch_also_when_it_raises() -> None:
    consumer = Consumer()
    before = otel_context.get_current()
    traced_next(lambda: Record([("traceparent", TP)]), consumer)
    during: list[int] = []

    def fetch() -> Any:
        during.append(trace_id())
        raise StopIteration

    with pytest.raises(StopIteration):
        traced_next(fetch, consumer)
    assert during == [0]
    assert otel_context.get_current() is before


def test_memo_gives_the_cached_context_for_equal_bytes_and_counts_refusals() -> None:
    first = context_from_headers([("traceparent", TP)])
    assert context_from_headers([("traceparent", bytes(bytearray(TP)))]) is first
    with Rejections() as counted:
        for _ in range(3):
            context_from_headers([("traceparent", b"00-zz-yy-01")])
            assert context_from_headers([("traceparent", TP)]) is first
    assert sum(counted.delta.values()) == 3


def test_memo_is_not_used_after_the_propagator_is_replaced() -> None:
    context_from_headers([("traceparent", TP)])
    old = propagate.get_global_textmap()
    propagate.set_global_textmap(CompositePropagator([TraceContextTextMapPropagator()]))
    try:
        ctx = context_from_headers([("traceparent", TP)])
        span = trace.get_current_span(ctx).get_span_context()
        assert span.trace_id == 0x0AF7651916CD43DD8448EB211C80319C
    finally:
        propagate.set_global_textmap(old)


def test_propagate_send_headers_equal_inject_and_a_nested_traced_send_adds_nothing(
    spans: Any,
) -> None:
    calls: list[dict[str, Any]] = []

    def client_send(*args: Any, **kwargs: Any) -> None:
        calls.append(kwargs)

    def instrumented(*args: Any, **kwargs: Any) -> Any:  # an instrumented class, span mode
        return traced_send(client_send, SendMode.SPAN, args, kwargs)

    with trace.get_tracer("t").start_as_current_span("request"):
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        traced_send(instrumented, SendMode.PROPAGATE, ("t", b"v"), {})
        traced_send(instrumented, SendMode.PROPAGATE, ("t", b"v"), {"headers": [("a", b"1")]})
    assert [type(c["headers"]) for c in calls] == [Propagated, Propagated]
    assert calls[0]["headers"] == [(k, v.encode()) for k, v in carrier.items()]
    assert calls[1]["headers"] == [("a", b"1"), *calls[0]["headers"]]
    assert [s.name for s in spans.get_finished_spans()] == ["request"]  # no send span
