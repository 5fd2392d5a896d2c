"""``send()`` with trace context: a PRODUCER span per record, or propagation only.

`traced_send` is the one implementation; `TracedProducer`, `trace_producer` and the
instrumentor only decide where it is hooked in. kafka-python's own contract is kept: headers
may come positionally, as a tuple or as None; the returned future is the library's own.
Delivery failures reported through that future are recorded on the span (ended at delivery).
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable
from typing import Any

from kafka import KafkaProducer
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind

from tracectx import record_error
from tracectx_kafka.attributes import send_attributes
from tracectx_kafka.classification import register
from tracectx_kafka.headers import Headers, normalise, with_context

__all__ = ["SendMode", "TracedProducer", "trace_producer", "traced_send"]

_SEND_PARAMS = ("topic", "value", "key", "headers", "partition", "timestamp_ms")
_tracer = trace.get_tracer("tracectx.kafka")
_reentry = threading.local()


class SendMode(enum.StrEnum):
    """What `send()` adds: a PRODUCER span per record (default), or only the current context
    (for hot paths: no span, headers encoded once per context and reused)."""

    SPAN = "span"
    PROPAGATE = "propagate"


class _HeaderCache:
    """The encoded propagation headers of the last context seen (contexts are immutable)."""

    __slots__ = ("_entry",)

    def __init__(self) -> None:
        self._entry: tuple[Context, Headers] | None = None

    def headers_for(self, ctx: Context, given: Any) -> Headers:
        entry = self._entry  # one atomic read: safe across sender threads
        if entry is None or entry[0] is not ctx:
            entry = (ctx, with_context(None, ctx))
            self._entry = entry
        if not given:
            return list(entry[1])
        return with_context(given, ctx)


_cache = _HeaderCache()


def _bind(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    bound = dict(zip(_SEND_PARAMS, args, strict=False))
    bound.update(kwargs)
    return bound


def traced_send(
    send: Callable[..., Any], mode: SendMode, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """Call kafka-python's `send` (already bound to the producer) with trace context added."""
    if getattr(_reentry, "active", False):  # a traced subclass of an instrumented class
        return send(*args, **kwargs)
    call = _bind(args, kwargs)
    topic = call.get("topic")
    _reentry.active = True
    try:
        if mode is SendMode.PROPAGATE or not isinstance(topic, str):
            call["headers"] = _cache.headers_for(otel_context.get_current(), call.get("headers"))
            return send(**call)
        return _send_with_span(send, topic, call)
    finally:
        _reentry.active = False


def _send_with_span(send: Callable[..., Any], topic: str, call: dict[str, Any]) -> Any:
    span = _tracer.start_span(
        f"send {topic}",
        kind=SpanKind.PRODUCER,
        attributes=send_attributes(topic, call.get("partition")),
    )
    call["headers"] = with_context(normalise(call.get("headers")), trace.set_span_in_context(span))
    try:
        future = send(**call)
    except Exception as exc:
        record_error(exc, span)
        span.end()
        raise
    future.add_callback(_delivered, span)
    future.add_errback(_failed, span)
    return future


def _delivered(span: Span, metadata: Any) -> None:
    if span.is_recording():
        span.set_attribute("messaging.destination.partition.id", str(metadata.partition))
        span.set_attribute("messaging.kafka.offset", metadata.offset)
    span.end()


def _failed(span: Span, exc: BaseException) -> None:
    record_error(exc, span)
    span.end()


class TracedProducer(KafkaProducer):  # type: ignore[misc]
    """A `KafkaProducer` whose `send()` carries the trace; ``send_mode=`` picks span or
    propagation-only. All other arguments are kafka-python's."""

    def __init__(self, *args: Any, send_mode: SendMode | str = SendMode.SPAN, **configs: Any):
        register()
        self._tracectx_mode = SendMode(send_mode)
        super().__init__(*args, **configs)

    def send(self, *args: Any, **kwargs: Any) -> Any:
        return traced_send(super().send, self._tracectx_mode, args, kwargs)


def trace_producer(
    producer: KafkaProducer, send_mode: SendMode | str = SendMode.SPAN
) -> KafkaProducer:
    """Make an existing producer's `send()` carry the trace (returns the same object)."""
    register()
    mode = SendMode(send_mode)
    original = producer.send
    if getattr(original, "_tracectx_original", None) is not None:
        original = original._tracectx_original

    def send(*args: Any, **kwargs: Any) -> Any:
        return traced_send(original, mode, args, kwargs)

    send._tracectx_original = original  # type: ignore[attr-defined]
    producer.send = send
    return producer
