"""The kafka-python 3.x adapter: ``send()``, iteration, ``poll()``, ``close()``, ``with``.

Three ways in, one behaviour::

    from tracectx_kafka import KafkaInstrumentor, TracedConsumer, TracedProducer
    KafkaInstrumentor().instrument()          # every KafkaProducer/KafkaConsumer
    producer = TracedProducer(bootstrap_servers=...)          # or only these
    consumer = trace_consumer(KafkaConsumer("orders", ...))    # or an existing one

Only argument binding and hook points live here; spans, headers and dead-letter handling are
the shared core's (`tracectx_kafka.producer`, `tracectx_kafka.consumer`, `tracectx_kafka.dlq`).
kafka-python's own contract is kept: headers may come positionally, as a tuple or as None; the
returned future is the library's own. Iteration calls ``poll()`` internally; that call makes no
span.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any

try:
    import kafka
    from kafka.errors import KafkaError
except ImportError as exc:
    # ModuleNotFoundError: `opentelemetry-instrument` skips a missing library quietly, while a
    # plain ImportError is logged with a full traceback on every start.
    raise ModuleNotFoundError(
        "tracectx_kafka needs kafka-python 3.x: pip install 'tracectx[kafka]'", name="kafka"
    ) from exc

from opentelemetry.trace import Tracer

from tracectx.checked import CheckedInstrumentor
from tracectx.patching import Patches
from tracectx.tracing import child_tracer
from tracectx_kafka import classification
from tracectx_kafka.attributes import SendAttributes
from tracectx_kafka.client import config_attributes
from tracectx_kafka.consumer import STATE, ConsumerState, RecordMode, now, state_of
from tracectx_kafka.headers import EMPTY, context_from_headers
from tracectx_kafka.instrumenting import OPTIONS as KAFKA_OPTIONS
from tracectx_kafka.instrumenting import options
from tracectx_kafka.package import KAFKA_PYTHON
from tracectx_kafka.producer import (
    Propagated,
    SendMode,
    SendSpan,
    bind_call,
    is_tombstone,
    propagation_headers,
    sending,
)
from tracectx_kafka.scope import VAR
from tracectx_kafka.tracing import tracer as _tracer

__all__ = [
    "KafkaInstrumentor",
    "TracedConsumer",
    "TracedProducer",
    "trace_consumer",
    "trace_producer",
    "traced_send",
]

_SEND_PARAMS = ("topic", "value", "key", "headers", "partition", "timestamp_ms")
_PROPAGATE = SendMode.PROPAGATE
_CONTEXT = RecordMode.CONTEXT
classification.add_errors(KafkaError, lambda exc: bool(getattr(exc, "retriable", False)))


def _client(client: Any, *, consumer: bool) -> dict[str, Any]:
    config = getattr(client, "config", None)
    return config_attributes(config, consumer=consumer) if isinstance(config, Mapping) else {}


def _producer_attributes(producer: Any) -> SendAttributes:
    """The producer's send-span attributes, read once and kept on it."""
    found = getattr(producer, "__dict__", {}).get("_tracectx_attributes")
    if found is None:
        found = SendAttributes(_client(producer, consumer=False))
        if hasattr(producer, "__dict__"):
            producer.__dict__["_tracectx_attributes"] = found
    return found


def traced_send(
    send: Callable[..., Any],
    mode: SendMode,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    tracer: Tracer | None = None,
    producer: Any = None,
) -> Any:
    """Call kafka-python's `send` (already bound to `producer`) with trace context added;
    spans come from `tracer` (default: the global provider's ``tracectx_kafka`` tracer).
    `kwargs` is the call's own dict: it may be changed."""
    # a span nobody would record (sampled out) is not made: the send only propagates
    shed = mode is _PROPAGATE or child_tracer(tracer) is None
    if shed and len(args) <= 2:  # the hot path: no `sending` flag to set
        headers = kwargs.get("headers")
        if type(headers) is not Propagated and not sending.get():
            kwargs["headers"] = propagation_headers(headers, Propagated)
        return send(*args, **kwargs)
    if sending.get() or type(kwargs.get("headers")) is Propagated:
        return send(*args, **kwargs)  # a traced subclass of an instrumented class
    if len(args) > 2:  # only send(topic, value) keeps its positional arguments
        args, kwargs = (), bind_call(_SEND_PARAMS, args, kwargs)
    topic = args[0] if args else kwargs.get("topic")
    token = sending.set(True)
    try:
        if shed or not isinstance(topic, str):
            kwargs["headers"] = propagation_headers(kwargs.get("headers"))
            return send(*args, **kwargs)
        scope = SendSpan(
            _tracer(tracer),
            topic,
            _producer_attributes(producer),
            kwargs.get("partition"),
            kwargs.get("key"),
            is_tombstone(args, kwargs),
        )
        kwargs["headers"] = scope.headers(kwargs.get("headers"))
        try:
            future = send(*args, **kwargs)
        except Exception as exc:
            scope.failed(exc)
            raise
        pending = scope.pending()
        scope.end(_partition(future))
        add_errback = getattr(future, "add_errback", None)
        if pending is not None and add_errback is not None:
            add_errback(pending.sent_at().failed)
        return future
    finally:
        sending.reset(token)


def _partition(future: Any) -> int | None:
    """The partition kafka-python put the record in (known once ``send()`` returns)."""
    tp = getattr(getattr(future, "_produce_future", None), "topic_partition", None)
    partition = getattr(tp, "partition", None)
    return partition if isinstance(partition, int) and partition >= 0 else None


class TracedProducer(kafka.KafkaProducer):  # type: ignore[misc]
    """A `KafkaProducer` whose `send()` carries the trace; ``send_mode=`` picks span or
    propagation-only. All other arguments are kafka-python's."""

    def __init__(self, *args: Any, send_mode: SendMode | str = SendMode.SPAN, **configs: Any):
        classification.register()
        self._tracectx_mode = SendMode(send_mode)
        super().__init__(*args, **configs)

    def send(self, *args: Any, **kwargs: Any) -> Any:
        return traced_send(super().send, self._tracectx_mode, args, kwargs, producer=self)


def trace_producer(
    producer: kafka.KafkaProducer, send_mode: SendMode | str = SendMode.SPAN
) -> kafka.KafkaProducer:
    """Make an existing producer's `send()` carry the trace (returns the same object)."""
    classification.register()
    mode = SendMode(send_mode)
    original = producer.send
    if getattr(original, "_tracectx_original", None) is not None:
        original = original._tracectx_original

    def send(*args: Any, **kwargs: Any) -> Any:
        return traced_send(original, mode, args, kwargs, producer=producer)

    send._tracectx_original = original  # type: ignore[attr-defined]
    producer.send = send
    return producer


def _state(
    consumer: Any,
    link: bool = False,
    tracer: Tracer | None = None,
    mode: RecordMode = RecordMode.SPAN,
) -> ConsumerState:
    return state_of(consumer, link, tracer, None, mode, _consumer_client)


def _consumer_client(consumer: Any) -> Mapping[str, Any]:
    return _client(consumer, consumer=True)


def traced_next(next_record: Callable[[], Any], consumer: Any) -> Any:
    """The iteration hook: end the previous record's scope, fetch, open the next one."""
    state = consumer.__dict__.get(STATE)
    if type(state) is not ConsumerState or state.client is None:
        state = _state(consumer)
    if state.mode is _CONTEXT and VAR is not None:
        # context mode, `ConsumerState.end_current` and `open` inlined: this runs per record.
        # No `iterating` flag: the internal poll it would silence makes no span in this mode.
        entered = state.entered
        if entered is not None:
            state.entered = None
            try:
                VAR.reset(entered)
            except (ValueError, RuntimeError):  # another context, or restored already
                pass
        if state.current is not None:
            state.end_current()
        record = next_record()
        if record is not None:
            raw = record.headers
            ctx = context_from_headers(raw) if raw else EMPTY
            state.entered = VAR.set(VAR.get() if ctx is EMPTY else ctx)
        return record
    if state.entered is not None or state.current is not None:
        state.end_current()
    state.iterating = True
    try:
        record = next_record()
    finally:
        state.iterating = False
    state.open(record)
    return record


def traced_poll(poll: Callable[..., Any], consumer: Any, args: Any, kwargs: Any) -> Any:
    """The ``poll()`` hook: a ``poll <topic>`` receive span per non-empty batch, none inside
    iteration."""
    state = _state(consumer)
    if state.iterating:
        return poll(*args, **kwargs)
    state.end_current()
    start = now()
    records = poll(*args, **kwargs)
    if records:
        state.receive(records, "poll", start)
    return records


def traced_close(close: Callable[..., Any], consumer: Any, args: Any, kwargs: Any) -> Any:
    """The ``close()`` hook: the open process span ends before the consumer closes."""
    _state(consumer).end_current()
    return close(*args, **kwargs)


class _TracedConsumerMixin:
    """Hooks iteration, poll, close and ``with`` of any KafkaConsumer (sub)class."""

    def __next__(self) -> Any:
        return traced_next(super().__next__, self)  # type: ignore[misc]

    def poll(self, *args: Any, **kwargs: Any) -> Any:
        return traced_poll(super().poll, self, args, kwargs)  # type: ignore[misc]

    def close(self, *args: Any, **kwargs: Any) -> Any:
        return traced_close(super().close, self, args, kwargs)  # type: ignore[misc]

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> Any:
        _state(self).end_current(exc)
        return super().__exit__(exc_type, exc, tb)  # type: ignore[misc]


class TracedConsumer(_TracedConsumerMixin, kafka.KafkaConsumer):  # type: ignore[misc]
    """A `KafkaConsumer` whose records run in their producer's trace (see
    `tracectx_kafka.consumer` for the spans and the parent/link choice); with
    ``record_mode="context"`` each record's context is current, without a span."""

    def __init__(
        self,
        *topics: str,
        link_to_producer: bool = False,
        record_mode: RecordMode | str = RecordMode.SPAN,
        **configs: Any,
    ) -> None:
        classification.register()
        state_of(self, link_to_producer, mode=record_mode)
        super().__init__(*topics, **configs)


_traced_classes: dict[type, type] = {kafka.KafkaConsumer: TracedConsumer}


def trace_consumer(
    consumer: kafka.KafkaConsumer,
    *,
    link_to_producer: bool = False,
    record_mode: RecordMode | str = RecordMode.SPAN,
) -> kafka.KafkaConsumer:
    """Make an existing consumer traced, in place (its class becomes a traced subclass);
    ``record_mode="context"``: each record's context current, no span."""
    classification.register()
    cls = type(consumer)
    if not issubclass(cls, _TracedConsumerMixin):
        traced = _traced_classes.get(cls)
        if traced is None:
            traced = type(f"Traced{cls.__name__}", (_TracedConsumerMixin, cls), {})
            _traced_classes[cls] = traced
        consumer.__class__ = traced
    state = _state(consumer)
    state.link, state.mode = link_to_producer, RecordMode(record_mode)
    return consumer


class KafkaInstrumentor(CheckedInstrumentor):
    """Patch `kafka.KafkaProducer` and `kafka.KafkaConsumer` in place (with
    `tracectx.patching.Patches`: ``uninstrument()`` puts back exactly what was there).

    Keyword args of `instrument()`: ``tracer_provider`` (default: the global one),
    ``send_mode`` (``"span"``, default, or ``"propagate"``), ``link_to_producer`` (process
    spans link to the producer instead of being its children) and ``record_mode``
    (``"span"``, default, or ``"context"``: each record's context current, no span); any
    other is a `TypeError`.
    """

    OPTIONS = KAFKA_OPTIONS

    def instrumentation_dependencies(self) -> Collection[str]:
        return KAFKA_PYTHON

    def _instrument(self, **kwargs: Any) -> None:
        opts = options("KafkaInstrumentor", kwargs)

        def own(consumer: Any) -> bool:
            if isinstance(consumer, _TracedConsumerMixin):
                return False
            _state(consumer, opts.link, opts.tracer, opts.records)
            return True

        def send(wrapped: Any, instance: Any, args: Any, kw: Any) -> Any:
            return traced_send(wrapped, opts.mode, args, kw, opts.tracer, instance)

        def next_(wrapped: Any, instance: Any, args: Any, kw: Any) -> Any:
            return traced_next(wrapped, instance) if own(instance) else wrapped()

        def poll(wrapped: Any, instance: Any, args: Any, kw: Any) -> Any:
            if own(instance):
                return traced_poll(wrapped, instance, args, kw)
            return wrapped(*args, **kw)

        def close(wrapped: Any, instance: Any, args: Any, kw: Any) -> Any:
            if own(instance):
                return traced_close(wrapped, instance, args, kw)
            return wrapped(*args, **kw)

        def exit_(wrapped: Any, instance: Any, args: Any, kw: Any) -> Any:
            if own(instance):
                _state(instance).end_current(args[1] if len(args) > 1 else None)
            return wrapped(*args, **kw)

        classification.register(classification.INSTRUMENTOR)
        self._patches = Patches()
        self._patches.wrap(kafka.KafkaProducer, "send", send)
        consumer = kafka.KafkaConsumer
        for name, hook in (("__next__", next_), ("poll", poll), ("close", close)):
            self._patches.wrap(consumer, name, hook)
        self._patches.wrap(consumer, "__exit__", exit_)

    def _uninstrument(self, **kwargs: Any) -> None:
        self._patches.undo()
        classification.unregister(classification.INSTRUMENTOR)
