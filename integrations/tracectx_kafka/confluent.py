"""The confluent-kafka adapter: ``Producer.produce`` (delivery callbacks from ``poll``/
``flush``) and ``Consumer.poll``/``consume``/``close``/``with`` — the same spans as
kafka-python, from the shared core.

    from tracectx_kafka.confluent import ConfluentKafkaInstrumentor, TracedConsumer
    ConfluentKafkaInstrumentor().instrument()   # confluent_kafka.Producer/Consumer made later
    consumer = TracedConsumer({"bootstrap.servers": ..., "group.id": ...})   # or only these

confluent-kafka's classes are C types whose methods cannot be patched, so the instrumentor
wraps the *names* ``confluent_kafka.Producer`` and ``confluent_kafka.Consumer``: a client made
through them after ``instrument()`` is a traced subclass (``isinstance`` keeps working; a class
subclassing the name subclasses the real client and is not traced); a client made before, or
through a name imported before (``from confluent_kafka import Producer`` at the top of a module
loaded earlier), is not — use `TracedProducer` / `TracedConsumer` there. An existing instance
cannot be traced in place (its C type cannot be swapped).

- ``produce()``: a ``send <topic>`` PRODUCER span ending when ``produce()`` returns (the
  record is only queued). The application's delivery callback runs with the record's trace
  current — under the send span when delivered, under a ``deliver <topic>`` span recording the
  failure (a `KafkaException`; retriable errors TRANSIENT) when not.
- ``poll()``: one record at a time — its ``process <topic>`` span (``record_mode="context"``:
  only its producer's context) is current until the next
  ``poll()``/``consume()``/``close()``; None or an event (``error()`` set) gives no span.
- ``consume()``: a ``consume <topic>`` CLIENT span linked to the records, none for an empty
  list; `tracectx_kafka.traced_records` gives each record its process span.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any

try:
    import confluent_kafka
    from confluent_kafka import KafkaError, KafkaException
except ImportError as exc:
    raise ModuleNotFoundError(
        "tracectx_kafka.confluent needs confluent-kafka: pip install confluent-kafka",
        name="confluent_kafka",
    ) from exc

from opentelemetry import context as otel_context
from opentelemetry.trace import Tracer
from opentelemetry.trace.propagation import _SPAN_KEY

from tracectx.checked import CheckedInstrumentor
from tracectx.patching import Patches
from tracectx.tracing import child_tracer, child_tracer_of
from tracectx_kafka import classification
from tracectx_kafka.attributes import SendAttributes
from tracectx_kafka.client import config_attributes
from tracectx_kafka.consumer import STATE, RecordMode, now, state_of
from tracectx_kafka.headers import EMPTY, context_from_headers
from tracectx_kafka.instrumenting import OPTIONS as KAFKA_OPTIONS
from tracectx_kafka.instrumenting import options
from tracectx_kafka.package import CONFLUENT_KAFKA
from tracectx_kafka.producer import (
    Pending,
    SendMode,
    SendSpan,
    bind_call,
    is_tombstone,
    propagation_headers,
    sending,
)
from tracectx_kafka.scope import VAR
from tracectx_kafka.tracing import tracer as _tracer

__all__ = ["ConfluentKafkaInstrumentor", "TracedConsumer", "TracedProducer", "traced_produce"]

HOLDER = "instrumentor:confluent-kafka"
_PRODUCE_PARAMS = ("topic", "value", "key", "partition", "on_delivery", "timestamp", "headers")
_PROPAGATE = SendMode.PROPAGATE
_produce = confluent_kafka.Producer.produce
_poll = confluent_kafka.Consumer.poll
_CONTEXT = RecordMode.CONTEXT


def _retriable(exc: BaseException) -> bool:
    error = exc.args[0] if exc.args else None
    return isinstance(error, KafkaError) and bool(error.retriable())


classification.add_errors(KafkaException, _retriable)


def _config(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The configuration a client was made with: a dict argument and/or keyword settings."""
    config: dict[str, Any] = dict(args[0]) if args and isinstance(args[0], Mapping) else {}
    config.update((k, v) for k, v in kwargs.items() if isinstance(k, str))
    return config


RDKAFKA_CLIENT_ID = "rdkafka"  # librdkafka's default ``client.id``: what the broker sees


def _client(config: Mapping[str, Any], *, consumer: bool) -> dict[str, Any]:
    """The client's span attributes; ``messaging.client.id`` is librdkafka's default when the
    configuration sets none."""
    attrs = config_attributes(config, consumer=consumer)
    attrs.setdefault("messaging.client.id", RDKAFKA_CLIENT_ID)
    return attrs


def _delivery(pending: Pending, user: Callable[..., Any] | None) -> Callable[[Any, Any], None]:
    """The delivery callback librdkafka calls from ``poll``/``flush``: a failure gets its
    ``deliver`` span; the application's callback runs in the record's trace."""

    def delivered(err: Any, msg: Any) -> None:
        if err is not None:
            pending.failed(KafkaException(err), None if user is None else lambda: user(err, msg))
        elif user is not None:
            token = otel_context.attach(pending.context())
            try:
                user(err, msg)
            finally:
                otel_context.detach(token)

    return delivered


def traced_produce(
    produce: Callable[..., Any],
    mode: SendMode,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    tracer: Tracer | None = None,
    attributes: SendAttributes | None = None,
) -> Any:
    """Call confluent-kafka's `produce` (bound to the producer) with trace context added;
    `attributes`: the producer's send-span attributes. `kwargs` is the call's own dict: it
    may be changed."""
    if sending.get():
        return produce(*args, **kwargs)
    if len(args) > 2:  # only send(topic, value) keeps its positional arguments
        args, kwargs = (), bind_call(_PRODUCE_PARAMS, args, kwargs)
    topic = args[0] if args else kwargs.get("topic")
    if "callback" in kwargs:  # confluent-kafka's alias
        kwargs["on_delivery"] = kwargs.pop("callback")
    token = sending.set(True)
    try:
        # a span nobody would record (sampled out) is not made: the send only propagates
        if mode is _PROPAGATE or not isinstance(topic, str) or child_tracer(tracer) is None:
            kwargs["headers"] = propagation_headers(kwargs.get("headers"))
            return produce(*args, **kwargs)
        scope = SendSpan(
            _tracer(tracer),
            topic,
            attributes if attributes is not None else SendAttributes(),
            kwargs.get("partition"),
            kwargs.get("key"),
            is_tombstone(args, kwargs),
        )
        kwargs["headers"] = scope.headers(kwargs.get("headers"))
        pending = scope.pending()
        if pending is not None:
            kwargs["on_delivery"] = _delivery(pending, kwargs.get("on_delivery"))
        try:
            result = produce(*args, **kwargs)
        except Exception as exc:
            scope.failed(exc)
            raise
        scope.end()
        if pending is not None:
            pending.sent_at()
        return result
    finally:
        sending.reset(token)


class TracedProducer(confluent_kafka.Producer):
    """A confluent-kafka `Producer` whose ``produce()`` carries the trace; ``send_mode=``
    (keyword, not a librdkafka setting) picks span or propagation-only."""

    # Who holds the Kafka-error classifier for this client: the wrappers for good, the
    # instrumentor's subclasses until its uninstrument()
    _tracectx_holder = classification.WRAPPERS

    def __init__(
        self, *args: Any, send_mode: SendMode | str = SendMode.SPAN, **kwargs: Any
    ) -> None:
        classification.register(self._tracectx_holder)
        self._tracectx_mode = SendMode(send_mode)
        self._tracectx_tracer: Tracer | None = None
        self._tracectx_attributes = SendAttributes(_client(_config(args, kwargs), consumer=False))
        super().__init__(*args, **kwargs)

    def produce(self, *args: Any, **kwargs: Any) -> Any:
        if (self._tracectx_mode is _PROPAGATE or child_tracer(self._tracectx_tracer) is None) and (
            len(args) <= 2 and "headers" not in kwargs
        ):
            # the hot path (propagate mode, or a send span nobody would record): produce(topic,
            # value, ...) with no headers of its own gets the context's cached headers; the C
            # client calls nothing back, so no `sending` flag
            kwargs["headers"] = propagation_headers(None)
            return _produce(self, *args, **kwargs)
        return traced_produce(
            super().produce,
            self._tracectx_mode,
            args,
            kwargs,
            self._tracectx_tracer,
            self._tracectx_attributes,
        )


class TracedConsumer(confluent_kafka.Consumer):
    """A confluent-kafka `Consumer` whose records run in their producer's trace
    (``link_to_producer=``, ``record_mode=``: keywords, not librdkafka settings; see
    `tracectx_kafka.consumer` for the spans, the parent/link choice and the context-only
    mode)."""

    _tracectx_holder = classification.WRAPPERS

    def __init__(
        self,
        *args: Any,
        link_to_producer: bool = False,
        record_mode: RecordMode | str = RecordMode.SPAN,
        **kwargs: Any,
    ) -> None:
        classification.register(self._tracectx_holder)
        client = _client(_config(args, kwargs), consumer=True)
        state_of(self, link_to_producer, None, client, record_mode)
        super().__init__(*args, **kwargs)

    def poll(self, *args: Any, **kwargs: Any) -> Any:
        state = self.__dict__[STATE]
        if VAR is None:
            state.end_current()
            message = _poll(self, *args, **kwargs)
            state.open_record(message)
            return message
        # `end_current` and, in context mode, `open_record` inlined: this runs per record
        entered = state.entered
        if entered is not None:
            state.entered = None
            try:
                VAR.reset(entered)
            except (ValueError, RuntimeError):  # another context, or restored already
                pass
        if state.current is not None:
            state.end_current()
        message = _poll(self, *args, **kwargs)
        if state.mode is _CONTEXT:
            if message is not None and message.error() is None:
                raw = message.headers()
                ctx = context_from_headers(raw) if raw else EMPTY
                state.entered = VAR.set(VAR.get() if ctx is EMPTY else ctx)
            return message
        if message is None or message.error() is not None:
            return message
        raw = message.headers()
        if state.link:
            state.open(message, raw)
            return message
        # a process span nobody would record (the producer was sampled out) is not made: the
        # record's context is made current instead, as in context mode
        ctx = context_from_headers(raw) if raw else EMPTY
        span: Any = ctx.get(_SPAN_KEY)  # only spans are stored there
        if span is not None and child_tracer_of(span, state.tracer) is None:
            state.entered = VAR.set(ctx)
        else:
            state.open_span(message, raw, ctx, _tracer(state.tracer))
        return message

    def consume(self, *args: Any, **kwargs: Any) -> Any:
        state = state_of(self)
        state.end_current()
        start = now()
        messages = super().consume(*args, **kwargs)
        if messages:
            state.receive(messages, "consume", start)
        return messages

    def close(self, *args: Any, **kwargs: Any) -> Any:
        state_of(self).end_current()
        return super().close(*args, **kwargs)

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> Any:
        state_of(self).end_current(exc)
        return super().__exit__(exc_type, exc, tb)


class _InstrumentedProducer(TracedProducer):
    """What ``confluent_kafka.Producer`` builds while instrumented: its hold on the classifier
    ends with ``uninstrument()`` (a `TracedProducer`'s lasts)."""

    _tracectx_holder = HOLDER


class _InstrumentedConsumer(TracedConsumer):
    """What ``confluent_kafka.Consumer`` builds while instrumented (see `_InstrumentedProducer`)."""

    _tracectx_holder = HOLDER


class ConfluentKafkaInstrumentor(CheckedInstrumentor):
    """Make ``confluent_kafka.Producer``/``Consumer`` build traced clients (see module docs
    for what that reaches); ``uninstrument()`` puts the names back exactly. Options as
    `tracectx_kafka.KafkaInstrumentor`: ``tracer_provider``, ``send_mode``,
    ``link_to_producer``, ``record_mode``; any other is a `TypeError`."""

    OPTIONS = KAFKA_OPTIONS

    def instrumentation_dependencies(self) -> Collection[str]:
        return CONFLUENT_KAFKA

    def _instrument(self, **kwargs: Any) -> None:
        opts = options("ConfluentKafkaInstrumentor", kwargs)

        def producer(wrapped: Any, instance: Any, args: Any, kw: Any) -> Any:
            made = _InstrumentedProducer(*args, send_mode=kw.pop("send_mode", opts.mode), **kw)
            made._tracectx_tracer = opts.tracer
            return made

        def consumer(wrapped: Any, instance: Any, args: Any, kw: Any) -> Any:
            link = kw.pop("link_to_producer", opts.link)
            mode = kw.pop("record_mode", opts.records)
            made = _InstrumentedConsumer(*args, link_to_producer=link, record_mode=mode, **kw)
            state_of(made).tracer = opts.tracer
            return made

        classification.register(HOLDER)
        self._patches = Patches()
        self._patches.wrap(confluent_kafka, "Producer", producer)
        self._patches.wrap(confluent_kafka, "Consumer", consumer)

    def _uninstrument(self, **kwargs: Any) -> None:
        self._patches.undo()
        classification.unregister(HOLDER)
