"""Consumed records in their producer's trace.

- Iterating a consumer: one ``process <topic>`` span per record, current while the loop body
  runs, ended when the next record is requested or the consumer closes (or its ``with`` block
  exits — an escaping error is recorded on it first).
- ``poll()``: one ``poll <topic>`` receive span per non-empty batch, linked to each record's
  creation context; `traced_records` then gives each record its own process span, and
  `process_record` does it for one record with error recording. Iteration calls ``poll()``
  internally; that call makes no span.

The process span is a child of the producer's span by default, or (``link_to_producer=True``)
a child of the current context with a link to it, per the messaging conventions.

Ending a process span restores the context from before its record — whatever the loop body
attached on top (a plain ``bind()``, say) — so nothing of one record (span, bound metadata)
reaches the next record, the next ``poll`` or the code after the loop. After ``break`` the last
record's span stays current until the next ``poll()``/``next()`` or ``close()``.

Each record's headers are read once: the contexts ``poll()`` extracted for its links are kept
(per thread, bounded) for the records' process spans, so a refused header is counted once.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from kafka import KafkaConsumer
from opentelemetry import baggage, trace
from opentelemetry import context as otel_context
from opentelemetry.context import Context
from opentelemetry.trace import Link, Span, SpanKind, Tracer

from tracectx import handled, record_error
from tracectx_kafka.attributes import SYSTEM, record_attributes
from tracectx_kafka.classification import register
from tracectx_kafka.dlq import ERROR_HEADER, read_error
from tracectx_kafka.headers import context_from_headers, header_map
from tracectx_kafka.tracing import tracer as _tracer

__all__ = ["RecordSpan", "TracedConsumer", "process_record", "trace_consumer", "traced_records"]

MAX_LINKS = 128
MAX_REMEMBERED = 1024  # contexts read by poll() and not yet used by a process span, per thread


class _Polled(threading.local):
    """Contexts extracted by this thread's ``poll()`` for links, keyed by the identity of the
    record's header list (kept alive with it, so the key cannot be reused); oldest dropped."""

    def __init__(self) -> None:
        self.contexts: dict[int, tuple[object, Context]] = {}

    def remember(self, headers: object, ctx: Context) -> None:
        contexts = self.contexts
        contexts[id(headers)] = (headers, ctx)
        while len(contexts) > MAX_REMEMBERED:
            del contexts[next(iter(contexts))]

    def take(self, headers: object) -> Context | None:
        found = self.contexts.pop(id(headers), None)
        return found[1] if found is not None and found[0] is headers else None


_polled = _Polled()
# Which record span this context opened last: reset()ting it tells whether end() runs in the
# context its span was attached in (ContextVar.reset refuses a token from another context).
_opened: contextvars.ContextVar[object] = contextvars.ContextVar("tracectx_kafka_record")


class RecordSpan:
    """The process span of one record, made current on creation; `end()` ends it and restores
    the context from before it, dropping whatever was attached on top meanwhile."""

    __slots__ = ("_marker", "_token", "span")

    def __init__(
        self,
        record: Any,
        group: str | None = None,
        *,
        link: bool = False,
        tracer: Tracer | None = None,
    ) -> None:
        headers = header_map(record.headers)
        remote = _polled.take(record.headers)
        if remote is None:
            remote = context_from_headers(headers)
        remote_sc = trace.get_current_span(remote).get_span_context()
        if link:
            parent = otel_context.get_current()
            for key, value in baggage.get_all(remote).items():
                parent = baggage.set_baggage(key, value, parent)
            links = [Link(remote_sc)] if remote_sc.is_valid else []
        else:
            parent, links = remote, []
        self.span = _tracer(tracer).start_span(
            f"process {record.topic}",
            context=parent,
            kind=SpanKind.CONSUMER,
            links=links,
            attributes=record_attributes(record, group, "process"),
        )
        self._token: object | None = otel_context.attach(
            trace.set_span_in_context(self.span, parent)
        )
        self._marker = _opened.set(self)
        dead = read_error(record.headers, headers) if ERROR_HEADER in headers else None
        if dead is not None:
            handled(dead, self.span)

    def end(self, exc: BaseException | None = None) -> None:
        """Record `exc` (if an `Exception`) as escaping, end the span, restore the context from
        before the record (only where it was attached: ended from another thread or task, the
        span ends and that context is left alone)."""
        if self._token is None:
            return
        if isinstance(exc, Exception):
            record_error(exc, self.span)
        token, self._token = self._token, None
        try:
            _opened.reset(self._marker)
        except ValueError:  # another context: this one never had the record attached
            pass
        else:
            otel_context.detach(token)  # type: ignore[arg-type]
        self.span.end()


@contextlib.contextmanager
def process_record(record: Any, group: str | None = None, *, link: bool = False) -> Iterator[Span]:
    """``with process_record(record):`` — the record's process span, current for the block;
    an escaping error is recorded on it and re-raised."""
    scope = RecordSpan(record, group, link=link)
    try:
        yield scope.span
    except BaseException as exc:
        scope.end(exc)
        raise
    scope.end()


def traced_records(
    records: Mapping[Any, Iterable[Any]] | Iterable[Any],
    consumer: Any = None,
    *,
    link: bool = False,
) -> Iterator[Any]:
    """``for record in traced_records(consumer.poll()):`` — each record in its own process
    span, current while the loop body runs. Accepts a poll result or any iterable of records."""
    group = _group(consumer) if consumer is not None else None
    state = getattr(consumer, "__dict__", {}).get("_tracectx_state")
    tracer = state.tracer if isinstance(state, _State) else None
    batches = records.values() if isinstance(records, Mapping) else (records,)
    for batch in batches:
        for record in batch:
            scope = RecordSpan(record, group, link=link, tracer=tracer)
            try:
                yield record
            finally:
                scope.end()


def _group(consumer: Any) -> str | None:
    config = getattr(consumer, "config", None)
    group = config.get("group_id") if isinstance(config, Mapping) else None
    return group if isinstance(group, str) else None


class _State:
    """Per-consumer bookkeeping: the open process span, whether poll() is ours, the tracer."""

    __slots__ = ("current", "iterating", "link", "tracer")

    def __init__(self, link: bool, tracer: Tracer | None = None) -> None:
        self.current: RecordSpan | None = None
        self.iterating = False
        self.link = link
        self.tracer = tracer

    def end_current(self, exc: BaseException | None = None) -> None:
        current, self.current = self.current, None
        if current is not None:
            current.end(exc)


def _state(consumer: Any, link: bool = False, tracer: Tracer | None = None) -> _State:
    state = consumer.__dict__.get("_tracectx_state")
    if state is None:
        state = consumer.__dict__["_tracectx_state"] = _State(link, tracer)
    return state  # type: ignore[no-any-return]


def traced_next(next_record: Any, consumer: Any) -> Any:
    """The iteration hook: end the previous record's span, fetch, open the next one."""
    state = _state(consumer)
    state.end_current()
    state.iterating = True
    try:
        record = next_record()
    finally:
        state.iterating = False
    state.current = RecordSpan(record, _group(consumer), link=state.link, tracer=state.tracer)
    return record


def traced_poll(poll: Any, consumer: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """The ``poll()`` hook: a receive span per non-empty batch, none inside iteration."""
    state = _state(consumer)
    if state.iterating:
        return poll(*args, **kwargs)
    state.end_current()
    start = time.time_ns()
    records = poll(*args, **kwargs)
    if records:
        _receive_span(records, _group(consumer), start, state.tracer)
    return records


def _receive_span(
    records: Mapping[Any, list[Any]], group: str | None, start: int, tracer: Tracer | None
) -> None:
    topics = sorted({tp.topic for tp in records})
    count = sum(len(batch) for batch in records.values())
    links: list[Link] = []
    read = 0
    for batch in records.values():
        for record in batch:
            if read >= MAX_LINKS:
                break
            read += 1
            ctx = context_from_headers(record.headers)
            if record.headers:
                _polled.remember(record.headers, ctx)
            sc = trace.get_current_span(ctx).get_span_context()
            if sc.is_valid:
                links.append(Link(sc, {"messaging.kafka.offset": record.offset}))
    attrs: dict[str, Any] = {
        "messaging.system": SYSTEM,
        "messaging.operation.type": "receive",
        "messaging.operation.name": "poll",
        "messaging.batch.message_count": count,
    }
    if len(topics) == 1:
        attrs["messaging.destination.name"] = topics[0]
    if group:
        attrs["messaging.consumer.group.name"] = group
    name = f"poll {topics[0]}" if len(topics) == 1 else "poll"
    span = _tracer(tracer).start_span(
        name, kind=SpanKind.CONSUMER, links=links, attributes=attrs, start_time=start
    )
    span.end()


def traced_close(close: Any, consumer: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
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


class TracedConsumer(_TracedConsumerMixin, KafkaConsumer):  # type: ignore[misc]
    """A `KafkaConsumer` whose records run in their producer's trace (see module docs)."""

    def __init__(self, *topics: str, link_to_producer: bool = False, **configs: Any) -> None:
        register()
        _state(self, link_to_producer)
        super().__init__(*topics, **configs)


_traced_classes: dict[type, type] = {KafkaConsumer: TracedConsumer}


def trace_consumer(consumer: KafkaConsumer, *, link_to_producer: bool = False) -> KafkaConsumer:
    """Make an existing consumer traced, in place (its class becomes a traced subclass)."""
    register()
    cls = type(consumer)
    if not issubclass(cls, _TracedConsumerMixin):
        traced = _traced_classes.get(cls)
        if traced is None:
            traced = type(f"Traced{cls.__name__}", (_TracedConsumerMixin, cls), {})
            _traced_classes[cls] = traced
        consumer.__class__ = traced
    _state(consumer).link = link_to_producer
    return consumer
