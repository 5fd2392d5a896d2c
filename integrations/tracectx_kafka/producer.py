"""``send()`` with trace context: a PRODUCER span per record, or propagation only.

`traced_send` is the one implementation; `TracedProducer`, `trace_producer` and the
instrumentor only decide where it is hooked in. kafka-python's own contract is kept: headers
may come positionally, as a tuple or as None; the returned future is the library's own.

The ``send <topic>`` PRODUCER span ends when ``send()`` returns (as OTel's contrib
instrumentation does), with the partition kafka-python chose; the offset the broker assigns
later is not on it. Nothing waits on the broker with a span open: a send to a broker that is
gone would otherwise hold one live SDK span per record until ``delivery_timeout_ms`` (42,820
spans at peak in a 15 s outage). A delivery failure reported later through the future gets its
own short ``deliver <topic>`` span instead — a child of the send span, covering the wait from
``send()`` returning to the failure, recording the error by the contract (its origin; retriable
Kafka errors are TRANSIENT). Per record in flight only the send span's context is held.
"""

from __future__ import annotations

import enum
import threading
import time
from collections.abc import Callable
from typing import Any

from kafka import KafkaProducer
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, Tracer

from tracectx import record_error
from tracectx_kafka.attributes import SYSTEM, send_attributes
from tracectx_kafka.classification import register
from tracectx_kafka.headers import Headers, normalise, with_context
from tracectx_kafka.tracing import tracer as _tracer

__all__ = ["SendMode", "TracedProducer", "trace_producer", "traced_send"]

_SEND_PARAMS = ("topic", "value", "key", "headers", "partition", "timestamp_ms")
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
    send: Callable[..., Any],
    mode: SendMode,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    tracer: Tracer | None = None,
) -> Any:
    """Call kafka-python's `send` (already bound to the producer) with trace context added;
    spans come from `tracer` (default: the global provider's ``tracectx_kafka`` tracer)."""
    if getattr(_reentry, "active", False):  # a traced subclass of an instrumented class
        return send(*args, **kwargs)
    call = _bind(args, kwargs)
    topic = call.get("topic")
    _reentry.active = True
    try:
        if mode is SendMode.PROPAGATE or not isinstance(topic, str):
            call["headers"] = _cache.headers_for(otel_context.get_current(), call.get("headers"))
            return send(**call)
        return _send_with_span(send, topic, call, _tracer(tracer))
    finally:
        _reentry.active = False


def _send_with_span(
    send: Callable[..., Any], topic: str, call: dict[str, Any], tracer: Tracer
) -> Any:
    span = tracer.start_span(
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
    recording = span.is_recording()
    partition = _partition(future)
    if partition is not None and recording:
        span.set_attribute("messaging.destination.partition.id", str(partition))
    span.end()
    add_errback = getattr(future, "add_errback", None)
    if recording and add_errback is not None:
        add_errback(_Pending(tracer, span.get_span_context(), topic, time.time_ns()).failed)
    return future


def _partition(future: Any) -> int | None:
    """The partition kafka-python put the record in (known once ``send()`` returns)."""
    tp = getattr(getattr(future, "_produce_future", None), "topic_partition", None)
    partition = getattr(tp, "partition", None)
    return partition if isinstance(partition, int) and partition >= 0 else None


class _Pending:
    """What one record in flight holds until the broker answers: the ended send span's context
    (not the span), to parent a ``deliver <topic>`` span should delivery fail."""

    __slots__ = ("sent", "since", "topic", "tracer")

    def __init__(self, tracer: Tracer, sent: SpanContext, topic: str, since: int) -> None:
        self.tracer, self.sent, self.topic, self.since = tracer, sent, topic, since

    def failed(self, exc: BaseException) -> None:
        parent = trace.set_span_in_context(NonRecordingSpan(self.sent), Context())
        span = self.tracer.start_span(
            f"deliver {self.topic}",
            context=parent,
            start_time=self.since,
            attributes={"messaging.system": SYSTEM, "messaging.destination.name": self.topic},
        )
        try:
            record_error(exc, span)
        finally:
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
