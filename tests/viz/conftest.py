"""Traces produced by the real SDK through tracectx, for the visualiser tests."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.trace import Link, SpanKind

from tracectx import ErrorKind, mark_handled, new_error, retry_transient, traced
from tracectx.executors import ContextThreadPoolExecutor
from tracectx.viz.model import SpanSet
from tracectx.viz.sources.memory import from_readable_spans


def produce_pipeline() -> None:
    """A request: retried TRANSIENT, absorbed BUSINESS, thread-pool failure, async hop, FATAL."""
    calls: list[int] = []

    @retry_transient(attempts=3, sleep=lambda s: None)
    @traced("reserve")
    def reserve() -> None:
        calls.append(1)
        if len(calls) < 2:
            raise TimeoutError("slow")

    tracer = trace.get_tracer("test")
    with traced("request"):
        reserve()
        with traced("pay"):
            try:
                with traced("debit"):
                    raise new_error(ErrorKind.BUSINESS, "no funds", code="E_FUNDS", account_id="a1")
            except Exception as exc:
                mark_handled(exc)
        with ContextThreadPoolExecutor(1) as pool, traced("fanout"):
            try:
                pool.submit(traced("worker")(lambda: 1 / 0)).result()
            except ZeroDivisionError:
                pass
        with tracer.start_as_current_span("publish", kind=SpanKind.PRODUCER) as producer:
            producer_ctx = producer.get_span_context()
        consumer = tracer.start_span("consume", kind=SpanKind.CONSUMER, links=[Link(producer_ctx)])
        with trace.use_span(consumer, end_on_exit=True):
            try:
                with traced("handle"):
                    raise new_error(ErrorKind.TRANSIENT, "downstream busy")
            except Exception:
                pass
        try:
            with traced("boot"):
                raise new_error(ErrorKind.FATAL, "config unreadable", code="E_CONF")
        except Exception:
            pass


@pytest.fixture
def pipeline_spans(spans) -> SpanSet:
    produce_pipeline()
    return from_readable_spans(spans.get_finished_spans())
