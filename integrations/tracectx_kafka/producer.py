"""Sending with trace context — the client-neutral part: a PRODUCER span per record, or
propagation only.

The adapters (kafka-python ``send``, aiokafka ``send``/``send_and_wait``, confluent-kafka
``produce``) only bind their client's arguments and hand the result back; the span, the headers
and the delivery-failure span are built here, once.

The ``send <topic>`` PRODUCER span ends when the client's send call returns (as OTel's contrib
instrumentations do), with the partition if it is known by then; the offset the broker assigns
later is not on it. Nothing waits on the broker with a span open: a send to a broker that is
gone would otherwise hold one live SDK span per record until the delivery timeout (42,820 spans
at peak in a 15 s outage with kafka-python). A delivery failure reported later gets its own
short ``deliver <topic>`` span instead — a child of the send span, covering the wait from the
send call returning to the failure, recording the error by the contract (its origin; a
client's retriable errors are TRANSIENT). Per record in flight only the send span's context is
held (`Pending`).
"""

from __future__ import annotations

import contextvars
import enum
import time
from collections.abc import Callable, Mapping
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, Tracer

from tracectx import config as _config
from tracectx import record_error
from tracectx_kafka.attributes import SYSTEM, SendAttributes
from tracectx_kafka.headers import SETUP_READ, Headers, encoded, setup, with_context
from tracectx_kafka.scope import VAR

__all__ = [
    "Pending",
    "Propagated",
    "SendAttributes",
    "SendMode",
    "SendSpan",
    "bind_call",
    "is_tombstone",
    "propagation_headers",
    "sending",
]

# Set while a traced send runs in this context: the inner call of a traced subclass of an
# instrumented class (or a wrapped instance of one) adds nothing. A ContextVar, not a thread
# local: an aiokafka send awaits, and another task's send must not look like re-entry.
sending: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "tracectx_kafka_sending", default=False
)


class SendMode(enum.StrEnum):
    """What a traced send adds: a PRODUCER span per record (default), or only the current
    context (for hot paths: no span, headers encoded once per context and reused)."""

    SPAN = "span"
    PROPAGATE = "propagate"


# The encoded propagation headers of the last context seen (contexts are immutable) under the
# propagator and settings then in force; replaced whole, read once per send: safe across
# sender threads.
_last: tuple[Context | None, object, object, Headers] = (None, None, None, [])


class Propagated(list[tuple[str, bytes]]):
    """Headers a kafka-python propagate-mode send made (aiokafka's and confluent-kafka's C
    code wants a plain list; kafka-python takes any list): the inner call of a traced
    subclass of an instrumented class passes them on untouched, without the `sending` flag
    (whose ``set``/``reset`` would cost as much per record as the rest of the wrapper)."""

    __slots__ = ()


def propagation_headers(given: Any, kind: Callable[[Headers], Headers] = list) -> Headers:
    """`given` headers with the current context's propagation headers (propagate mode), as a
    new `kind` (a list; kafka-python's adapter asks for `Propagated`); the headers of an
    unchanged context are encoded once."""
    global _last
    ctx = otel_context.get_current() if VAR is None else VAR.get()
    if given:
        out = with_context(given, ctx)
        return out if out is given else kind(out)  # the same: malformed, for the client
    last = _last
    textmap: object
    current: object
    if SETUP_READ:
        textmap, current = propagate._HTTP_TEXT_FORMAT, _config._current
    else:
        textmap, current = setup()
    if last[0] is not ctx or last[1] is not textmap or last[2] is not current:
        last = _last = (ctx, textmap, current, encoded(ctx))
    return kind(last[3])


def is_tombstone(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> bool:
    """Whether a send call (``send(topic, value, ...)``, bound or not) sends no value."""
    return (args[1] if len(args) > 1 else kwargs.get("value")) is None


def bind_call(
    params: tuple[str, ...], args: tuple[Any, ...], kwargs: Mapping[str, Any]
) -> dict[str, Any]:
    """A client call's positional `args` named by `params`, merged with `kwargs`."""
    bound = dict(zip(params, args, strict=False))
    bound.update(kwargs)
    return bound


class SendSpan:
    """The ``send <topic>`` PRODUCER span of one record, started now (not made current)."""

    __slots__ = ("span", "topic", "tracer")

    def __init__(
        self,
        tracer: Tracer,
        topic: str,
        attributes: SendAttributes,
        partition: Any = None,
        key: Any = None,
        tombstone: bool = False,
    ) -> None:
        self.tracer, self.topic = tracer, topic
        name, attrs = attributes.of(topic, partition, key, tombstone)
        self.span = tracer.start_span(name, kind=SpanKind.PRODUCER, attributes=attrs)

    def headers(self, given: Any) -> Headers:
        """`given` headers with this span's context replacing any propagation headers."""
        return with_context(given, None, self.span)

    def pending(self) -> Pending | None:
        """What a delivery callback needs to report a failure (None when not recording)."""
        if not self.span.is_recording():
            return None
        return Pending(self.tracer, self.span.get_span_context(), self.topic)

    def failed(self, exc: BaseException) -> None:
        """The send call raised: `exc` recorded, the span ended."""
        record_error(exc, self.span)
        self.span.end()

    def end(self, partition: int | None = None) -> None:
        """The send call returned (`partition`: where the client put the record, if known)."""
        if partition is not None and partition >= 0 and self.span.is_recording():
            self.span.set_attribute("messaging.destination.partition.id", str(partition))
        self.span.end()


class Pending:
    """What one record in flight holds until the broker answers: the ended send span's context
    (not the span), to parent a ``deliver <topic>`` span should delivery fail."""

    __slots__ = ("sent", "since", "topic", "tracer")

    def __init__(self, tracer: Tracer, sent: SpanContext, topic: str) -> None:
        self.tracer, self.sent, self.topic = tracer, sent, topic
        self.since: int | None = None

    def sent_at(self) -> Pending:
        """Mark the end of the send call: the wait for delivery starts now."""
        self.since = time.time_ns()
        return self

    def context(self) -> Context:
        """A context whose current span is the (ended) send span."""
        return trace.set_span_in_context(NonRecordingSpan(self.sent), Context())

    def failed(self, exc: BaseException, then: Callable[[], object] | None = None) -> None:
        """Delivery failed with `exc`: a ``deliver <topic>`` span records it; `then` (the
        application's delivery callback) runs with that span current."""
        span = self.tracer.start_span(
            f"deliver {self.topic}",
            context=self.context(),
            start_time=self.since or time.time_ns(),
            attributes={"messaging.system": SYSTEM, "messaging.destination.name": self.topic},
        )
        try:
            record_error(exc, span)
            if then is not None:
                token = otel_context.attach(trace.set_span_in_context(span))
                try:
                    then()
                finally:
                    otel_context.detach(token)
        finally:
            span.end()
