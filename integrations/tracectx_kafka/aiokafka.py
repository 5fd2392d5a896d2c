"""The aiokafka adapter: ``send()``/``send_and_wait()``, ``async for``, ``getone()``,
``getmany()``, ``stop()`` and ``async with`` — the same spans as kafka-python, from the shared
core.

    from tracectx_kafka.aiokafka import AIOKafkaInstrumentor
    AIOKafkaInstrumentor().instrument()       # every AIOKafkaProducer/AIOKafkaConsumer
    producer = TracedAIOKafkaProducer(bootstrap_servers=...)   # or only these

- ``send()`` (and so ``send_and_wait()``, which calls it): a ``send <topic>`` PRODUCER span
  ending when ``send()`` returns its delivery future, with the partition aiokafka's
  partitioner chose (its ``_partition``, patched too); a failure of that future later is a
  ``deliver <topic>`` child span. Or, with ``send_mode="propagate"``, only the headers.
- ``getone()`` (and so ``async for``, which calls it): the record's ``process <topic>`` span
  (with ``record_mode="context"``: only its producer's context) is current in the calling
  task until the next ``getone()``/``getmany()``/``stop()``. Awaited through
  ``asyncio.wait_for`` (another task on Python < 3.12) the span ends without touching the
  caller's context.
- ``getmany()``: a ``getmany <topic>`` CLIENT span linked to the records, none for an empty
  batch; `tracectx_kafka.traced_records` gives each record its process span.

The "is this call already traced" guard is a context variable, so concurrent tasks' sends are
each traced.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable, Collection, Mapping
from typing import Any

try:
    import aiokafka  # type: ignore[import-untyped,unused-ignore]
    from aiokafka.errors import KafkaError  # type: ignore[import-untyped,unused-ignore]
except ImportError as exc:
    raise ModuleNotFoundError(
        "tracectx_kafka.aiokafka needs aiokafka: pip install aiokafka", name="aiokafka"
    ) from exc

from opentelemetry.trace import Tracer

from tracectx.checked import CheckedInstrumentor
from tracectx.patching import Patches
from tracectx.tracing import child_tracer
from tracectx_kafka import classification
from tracectx_kafka.attributes import SendAttributes
from tracectx_kafka.client import client_attributes
from tracectx_kafka.consumer import ConsumerState, RecordMode, now, state_of
from tracectx_kafka.instrumenting import OPTIONS as KAFKA_OPTIONS
from tracectx_kafka.instrumenting import options
from tracectx_kafka.package import AIOKAFKA
from tracectx_kafka.producer import (
    Pending,
    SendMode,
    SendSpan,
    bind_call,
    is_tombstone,
    propagation_headers,
    sending,
)
from tracectx_kafka.tracing import tracer as _tracer

__all__ = [
    "AIOKafkaInstrumentor",
    "TracedAIOKafkaConsumer",
    "TracedAIOKafkaProducer",
    "traced_send",
]

HOLDER = "instrumentor:aiokafka"
# The partition aiokafka's partitioner picked inside the traced send running in this task
# (``send()`` keeps it to itself and resolves its future only on delivery): the send span's
# ``messaging.destination.partition.id``. A ContextVar: concurrent tasks each see their own.
_chosen: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar(
    "tracectx_aiokafka_partition", default=None
)
_SEND_PARAMS = ("topic", "value", "key", "partition", "timestamp_ms", "headers")
_PROPAGATE = SendMode.PROPAGATE
classification.add_errors(KafkaError, lambda exc: bool(getattr(exc, "retriable", False)))


def _client_of(client: Any, group: Any = None) -> dict[str, Any]:
    """Span attributes from aiokafka's client (``producer.client`` / ``consumer._client``)."""
    inner = getattr(client, "client", None) or getattr(client, "_client", None)
    return client_attributes(
        getattr(inner, "_bootstrap_servers", None), getattr(inner, "_client_id", None), group
    )


def _producer_attributes(producer: Any) -> SendAttributes:
    """The producer's send-span attributes, read once and kept on it."""
    found = getattr(producer, "__dict__", {}).get("_tracectx_attributes")
    if found is None:
        found = SendAttributes(_client_of(producer) if producer is not None else None)
        if hasattr(producer, "__dict__"):
            producer.__dict__["_tracectx_attributes"] = found
    return found


def _on_done(pending: Pending) -> Callable[[asyncio.Future[Any]], None]:
    def done(future: asyncio.Future[Any]) -> None:
        if not future.cancelled() and future.exception() is not None:
            pending.failed(future.exception())  # type: ignore[arg-type]

    return done


async def traced_send(
    send: Callable[..., Any],
    mode: SendMode,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    tracer: Tracer | None = None,
    producer: Any = None,
) -> Any:
    """Await aiokafka's `send` (bound to `producer`) with trace context added; returns its
    delivery future. `kwargs` is the call's own dict: it may be changed."""
    if sending.get():
        return await send(*args, **kwargs)
    if len(args) > 2:  # only send(topic, value) keeps its positional arguments
        args, kwargs = (), bind_call(_SEND_PARAMS, args, kwargs)
    topic = args[0] if args else kwargs.get("topic")
    token = sending.set(True)
    try:
        # a span nobody would record (sampled out) is not made: the send only propagates
        if mode is _PROPAGATE or not isinstance(topic, str) or child_tracer(tracer) is None:
            kwargs["headers"] = propagation_headers(kwargs.get("headers"))
            return await send(*args, **kwargs)
        scope = SendSpan(
            _tracer(tracer),
            topic,
            _producer_attributes(producer),
            kwargs.get("partition"),
            kwargs.get("key"),
            is_tombstone(args, kwargs),
        )
        kwargs["headers"] = scope.headers(kwargs.get("headers"))
        chosen: list[int] = []
        box = _chosen.set(chosen)
        try:
            future = await send(*args, **kwargs)
        except Exception as exc:
            scope.failed(exc)
            raise
        finally:
            _chosen.reset(box)
        pending = scope.pending()
        scope.end(chosen[-1] if chosen else None)
        if pending is not None and isinstance(future, asyncio.Future):
            future.add_done_callback(_on_done(pending.sent_at()))
        return future
    finally:
        sending.reset(token)


def traced_partition(partition: Callable[..., Any], args: Any, kwargs: Any) -> Any:
    """Call aiokafka's partitioner; a traced send running in this task notes its choice."""
    chosen = partition(*args, **kwargs)
    box = _chosen.get()
    if box is not None and isinstance(chosen, int):
        box.append(chosen)
    return chosen


def _state(
    consumer: Any,
    link: bool = False,
    tracer: Tracer | None = None,
    mode: RecordMode = RecordMode.SPAN,
) -> ConsumerState:
    return state_of(consumer, link, tracer, None, mode, _consumer_client)


def _consumer_client(consumer: Any) -> Mapping[str, Any]:
    return _client_of(consumer, getattr(consumer, "_group_id", None))


async def traced_getone(getone: Callable[..., Any], consumer: Any, args: Any, kw: Any) -> Any:
    """End the previous record's scope, fetch one, open its process span (or context) in this
    task."""
    state = _state(consumer)
    state.end_current()
    record = await getone(*args, **kw)
    state.open(record)
    return record


async def traced_getmany(getmany: Callable[..., Any], consumer: Any, args: Any, kw: Any) -> Any:
    """End the previous record's span; a ``getmany <topic>`` span for a non-empty batch."""
    state = _state(consumer)
    state.end_current()
    start = now()
    records = await getmany(*args, **kw)
    if records:
        state.receive(records, "getmany", start)
    return records


async def traced_stop(stop: Callable[..., Any], consumer: Any, exc: BaseException | None) -> Any:
    """The open process span (recording `exc`, escaping an ``async with``) ends first."""
    _state(consumer).end_current(exc)
    return await stop()


class TracedAIOKafkaProducer(aiokafka.AIOKafkaProducer):  # type: ignore[misc]
    """An `AIOKafkaProducer` whose ``send()``/``send_and_wait()`` carry the trace;
    ``send_mode=`` picks span or propagation-only."""

    def __init__(self, *args: Any, send_mode: SendMode | str = SendMode.SPAN, **configs: Any):
        classification.register()
        self._tracectx_mode = SendMode(send_mode)
        super().__init__(*args, **configs)

    async def send(self, *args: Any, **kwargs: Any) -> Any:
        return await traced_send(super().send, self._tracectx_mode, args, kwargs, producer=self)

    def _partition(self, *args: Any, **kwargs: Any) -> Any:
        return traced_partition(super()._partition, args, kwargs)


class TracedAIOKafkaConsumer(aiokafka.AIOKafkaConsumer):  # type: ignore[misc]
    """An `AIOKafkaConsumer` whose records run in their producer's trace (see
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

    async def getone(self, *partitions: Any) -> Any:
        return await traced_getone(super().getone, self, partitions, {})

    async def getmany(self, *partitions: Any, **kwargs: Any) -> Any:
        return await traced_getmany(super().getmany, self, partitions, kwargs)

    async def stop(self) -> None:
        await traced_stop(super().stop, self, None)

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        _state(self).end_current(exc)
        await super().__aexit__(exc_type, exc, tb)


class AIOKafkaInstrumentor(CheckedInstrumentor):
    """Patch `aiokafka.AIOKafkaProducer` and `aiokafka.AIOKafkaConsumer` in place (undone
    exactly by ``uninstrument()``). Options as `tracectx_kafka.KafkaInstrumentor`:
    ``tracer_provider``, ``send_mode``, ``link_to_producer``, ``record_mode``; any other is a
    `TypeError`."""

    OPTIONS = KAFKA_OPTIONS

    def instrumentation_dependencies(self) -> Collection[str]:
        return AIOKAFKA

    def _instrument(self, **kwargs: Any) -> None:
        opts = options("AIOKafkaInstrumentor", kwargs)

        def own(consumer: Any) -> bool:
            if isinstance(consumer, TracedAIOKafkaConsumer):
                return False
            _state(consumer, opts.link, opts.tracer, opts.records)
            return True

        def send(wrapped: Any, instance: Any, args: Any, kw: Any) -> Any:
            return traced_send(wrapped, opts.mode, args, kw, opts.tracer, instance)

        def getone(wrapped: Any, instance: Any, args: Any, kw: Any) -> Any:
            if own(instance):
                return traced_getone(wrapped, instance, args, kw)
            return wrapped(*args, **kw)

        def getmany(wrapped: Any, instance: Any, args: Any, kw: Any) -> Any:
            if own(instance):
                return traced_getmany(wrapped, instance, args, kw)
            return wrapped(*args, **kw)

        def stop(wrapped: Any, instance: Any, args: Any, kw: Any) -> Any:
            if own(instance):
                return traced_stop(wrapped, instance, None)
            return wrapped(*args, **kw)

        def aexit(wrapped: Any, instance: Any, args: Any, kw: Any) -> Any:
            if own(instance):
                _state(instance).end_current(args[1] if len(args) > 1 else None)
            return wrapped(*args, **kw)

        classification.register(HOLDER)
        self._patches = Patches()
        self._patches.wrap(aiokafka.AIOKafkaProducer, "send", send)
        self._patches.wrap(
            aiokafka.AIOKafkaProducer,
            "_partition",
            lambda wrapped, _instance, args, kw: traced_partition(wrapped, args, kw),
        )
        consumer = aiokafka.AIOKafkaConsumer
        for name, hook in (
            ("getone", getone),
            ("getmany", getmany),
            ("stop", stop),
            ("__aexit__", aexit),
        ):
            self._patches.wrap(consumer, name, hook)

    def _uninstrument(self, **kwargs: Any) -> None:
        self._patches.undo()
        classification.unregister(HOLDER)
