"""Consumed records in their producer's trace — the client-neutral part.

- One record at a time (kafka-python and aiokafka iteration, aiokafka ``getone()``,
  confluent-kafka ``poll()``): `ConsumerState.open_record` gives each record a ``process
  <topic>`` CONSUMER span, current while the application handles it, ended when the next record
  is requested or the consumer closes (or its ``with`` block exits — an escaping error is
  recorded on it first).
- A batch (kafka-python ``poll()``, aiokafka ``getmany()``, confluent-kafka ``consume()``):
  `ConsumerState.receive` makes one ``<operation> <topic>`` CLIENT span per non-empty batch,
  linked to each record's creation context (no span for an empty batch); `traced_records` then
  gives each record its own process span, and `process_record` does it for one record with
  error recording.

Producer and process span: the process span is by default a *child* of the producer's send
span; ``link_to_producer=True`` makes it a child of the consumer's current context with a
*link* to the producer instead. The messaging conventions recommend links (a consumer's work is
its own operation, often batched) and allow the parent; tracectx keeps the parent as its
default because its error graph follows parent edges within one trace: with the parent, where
an error was born in the producer, how it crossed the topic and who absorbed it (a handler, a
dead-letter consumer) is one trace; with links it is two traces joined only by a link. Choose
links when one trace per consumer loop (or per batch job) matters more.

Ending a process span restores the context from before its record — whatever the application
attached on top (a plain ``bind()``, say) — so nothing of one record (span, bound metadata)
reaches the next record, the next poll or the code after the loop. After ``break`` the last
record's span stays current until the next poll/next record or close. Ended from another
thread or task, the span ends and neither context is touched.

``record_mode="context"`` (`RecordMode.CONTEXT`) makes no span at all: each record's producer
context (its trace and baggage) is current while the application handles it, for log and error
correlation, and removed again like a process span's; batch receives make no span either. That
costs little more than reading the ``traceparent`` header: records sent from one context carry
the same header bytes, and the context extracted from them is reused.

Each record's headers are read once: the contexts a batch receive extracted for its links are
kept (per thread, bounded, keyed by the record object) for the records' process spans, so a
refused header is counted once.
"""

from __future__ import annotations

import contextlib
import enum
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from opentelemetry import baggage, trace
from opentelemetry import context as otel_context
from opentelemetry.context import Context
from opentelemetry.trace import Link, Span, SpanKind, Tracer
from opentelemetry.trace.propagation import _SPAN_KEY

from tracectx import mark_handled, record_error
from tracectx.tracing import sampled_out
from tracectx_kafka.attributes import ProcessAttributes, receive_attributes, record_attributes
from tracectx_kafka.dlq import ERROR_HEADER, read_error
from tracectx_kafka.headers import EMPTY, context_from_headers, header_map
from tracectx_kafka.records import UNREAD, is_event, record_info
from tracectx_kafka.scope import VAR, enter, leave
from tracectx_kafka.tracing import tracer as _tracer

__all__ = [
    "MAX_LINKS",
    "ConsumerState",
    "RecordContext",
    "RecordMode",
    "RecordSpan",
    "process_record",
    "state_of",
    "traced_records",
]

MAX_LINKS = 128
MAX_REMEMBERED = 1024  # contexts read by a receive and not yet used by a process span, per thread
STATE = "_tracectx_state"


class RecordMode(enum.StrEnum):
    """What a traced consumer does per record: a ``process`` span (default), or only the
    producer's context made current (no span: for log/error correlation on hot paths)."""

    SPAN = "span"
    CONTEXT = "context"


_CONTEXT = RecordMode.CONTEXT


class _Polled(threading.local):
    """Contexts extracted by this thread's batch receives for links, keyed by the identity of
    the record (kept alive with it, so the key cannot be reused); oldest dropped."""

    def __init__(self) -> None:
        self.contexts: dict[int, tuple[object, Context]] = {}

    def remember(self, record: object, ctx: Context) -> None:
        global _remembered
        _remembered = True
        contexts = self.contexts
        contexts[id(record)] = (record, ctx)
        while len(contexts) > MAX_REMEMBERED:
            del contexts[next(iter(contexts))]

    def take(self, record: object) -> Context | None:
        found = self.contexts.pop(id(record), None)
        return found[1] if found is not None and found[0] is record else None


_polled = _Polled()
_remembered = False  # whether any thread has remembered a context (read before the per-thread)
_UNREAD: Any = UNREAD


class RecordSpan:
    """The process span of one record (of any client), made current on creation; `end()` ends
    it and restores the context from before it, dropping whatever was attached on top."""

    __slots__ = ("_entered", "span")

    def __init__(
        self,
        record: Any,
        group: str | None = None,
        *,
        link: bool = False,
        tracer: Tracer | None = None,
        client: Mapping[str, Any] | None = None,
        remote: Context | None = None,
    ) -> None:
        info = record_info(record)
        raw = info.headers
        if remote is None and _remembered and _polled.contexts:
            remote = _polled.take(record)
        if remote is None:
            remote = context_from_headers(raw) if raw and isinstance(raw, list | tuple) else EMPTY
        links: tuple[Link, ...] = ()
        if link:
            parent = otel_context.get_current()
            for key, value in baggage.get_all(remote).items():
                parent = baggage.set_baggage(key, value, parent)
            remote_sc = trace.get_current_span(remote).get_span_context()
            if remote_sc.is_valid:
                links = (Link(remote_sc),)
        else:
            parent = remote
        attrs = record_attributes(
            info.topic, info.partition, info.offset, info.key, client, tombstone=info.tombstone
        )
        if group:
            attrs["messaging.consumer.group.name"] = group
        self._start(record, raw, parent, _tracer(tracer), f"process {info.topic}", attrs, links)

    def _start(
        self,  # made by `__init__`, or bare by `ConsumerState.open_span`
        record: Any,
        raw: Any,
        parent: Context,
        tracer: Tracer,
        name: str,
        attrs: dict[str, Any],
        links: tuple[Link, ...] = (),
    ) -> None:
        """Start the span `name` under `parent` and make it current; a dead-lettered record's
        error (its ``tracectx-error`` header) is marked as absorbed by it."""
        span = self.span = tracer.start_span(name, parent, SpanKind.CONSUMER, attrs, links)
        current = Context({**parent, _SPAN_KEY: span})  # `trace.set_span_in_context`
        self._entered: object | None = enter(current) if VAR is None else VAR.set(current)
        if raw and not _lone_traceparent(raw) and not _propagation_only(raw):
            view = header_map(raw)
            if ERROR_HEADER in view:
                dead = read_error(record, raw, view)
                if dead is not None:
                    mark_handled(dead, span)

    def end(self, exc: BaseException | None = None) -> None:
        """Record `exc` (if an `Exception`) as escaping, end the span, restore the context from
        before the record (only where it was attached: ended from another thread or task, the
        span ends and that context is left alone)."""
        entered, self._entered = self._entered, None
        if entered is None:
            return
        if exc is not None and isinstance(exc, Exception):
            record_error(exc, self.span)
        if VAR is None:
            leave(entered)
        else:  # `leave`, inlined: this runs once per record
            try:
                VAR.reset(entered)  # type: ignore[arg-type]
            except (ValueError, RuntimeError):
                pass
        self.span.end()


_new_scope = object.__new__
_W3C_NAMES = frozenset({"traceparent", "tracestate", "baggage"})


def _lone_traceparent(raw: Any) -> bool:
    """Whether the headers `raw` are one ``("traceparent", value)`` pair: the usual case of
    `_propagation_only`, told in one expression."""
    return (
        type(raw) is list
        and len(raw) == 1
        and type(first := raw[0]) is tuple
        and len(first) == 2
        and first[0] == "traceparent"
    )


def _propagation_only(raw: Any) -> bool:
    """Whether the headers `raw` are only ``(name, value)`` pairs named as the W3C propagation
    headers (the usual: one ``traceparent``), so they hold no error envelope to read."""
    if type(raw) is not list and type(raw) is not tuple:
        return False
    for item in raw:
        if type(item) is not tuple or len(item) != 2:
            return False
        name = item[0]
        if type(name) is not str or name not in _W3C_NAMES:
            return False
    return True


class RecordContext:
    """The producer's context of one record made current on creation, without a span (the
    consumer's own context when the record carries none); `end()` restores the context from
    before it, dropping whatever was attached on top — as `RecordSpan` does."""

    __slots__ = ("_entered",)

    def __init__(self, headers: Any) -> None:
        self._entered: object | None = enter_record(headers)

    @classmethod
    def of(cls, record: Any) -> RecordContext:
        """`RecordContext` of `record` (any client's: headers an attribute or a method)."""
        return cls(headers_of(record))

    def end(self, exc: BaseException | None = None) -> None:
        """Restore the context from before the record (only where it was made current);
        `exc` is not recorded: there is no span."""
        entered, self._entered = self._entered, None
        if entered is not None:
            leave(entered)


def headers_of(record: Any) -> Any:
    """A record's raw headers: an attribute (kafka-python, aiokafka) or a method (confluent)."""
    headers = getattr(record, "headers", None)
    return headers() if callable(headers) else headers


def enter_record(headers: Any) -> object:
    """Make the context of a record with `headers` current (the current one, re-entered, when
    they carry none: leaving still drops what was attached on top); for `leave`."""
    ctx = context_from_headers(headers) if headers else EMPTY
    return enter(ctx if ctx is not EMPTY else otel_context.get_current())


@contextlib.contextmanager
def process_record(
    record: Any, group: str | None = None, *, link: bool = False, consumer: Any = None
) -> Iterator[Span]:
    """``with process_record(record):`` — the record's process span, current for the block;
    an escaping error is recorded on it and re-raised. With `consumer` (a traced one), its
    tracer, group and client attributes are used."""
    state = _state_or_none(consumer)
    scope = RecordSpan(
        record,
        group,
        link=link or (state is not None and state.link),
        tracer=state.tracer if state else None,
        client=state.client if state else None,
    )
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
    link: bool | None = None,
) -> Iterator[Any]:
    """``for record in traced_records(batch, consumer):`` — each record in its own process
    span, current while the loop body runs. Accepts a kafka-python ``poll()`` or aiokafka
    ``getmany()`` result, a confluent-kafka ``consume()`` list, or any iterable of records;
    confluent-kafka error events in it are passed through without a span. `link` defaults to
    the traced consumer's ``link_to_producer``; a consumer traced with
    ``record_mode="context"`` gets each record's context made current, no span."""
    state = _state_or_none(consumer)
    tracer = state.tracer if state else None
    client = state.client if state else _fallback_client(consumer)
    if link is None:
        link = state.link if state else False
    spans = state is None or state.mode is not _CONTEXT
    batches = records.values() if isinstance(records, Mapping) else (records,)
    for batch in batches:
        for record in batch:
            if is_event(record):
                yield record
                continue
            scope: RecordSpan | RecordContext
            if spans:
                scope = RecordSpan(record, link=link, tracer=tracer, client=client)
            else:
                scope = RecordContext.of(record)
            try:
                yield record
            finally:
                scope.end()


def _fallback_client(consumer: Any) -> dict[str, Any] | None:
    """The group of an untraced kafka-python consumer (its ``config`` mapping)."""
    config = getattr(consumer, "config", None)
    group = config.get("group_id") if isinstance(config, Mapping) else None
    return {"messaging.consumer.group.name": group} if isinstance(group, str) and group else None


class ConsumerState:
    """Per-consumer bookkeeping: the open record scope (process span, or context only), whether
    a receive is the client's own (iteration polls internally: no span), the options, the
    tracer and the client attributes (``server.*``, ``messaging.client.id``, group — read once,
    by the adapter)."""

    __slots__ = (
        "attributes",
        "client",
        "current",
        "entered",
        "iterating",
        "link",
        "mode",
        "tracer",
    )

    def __init__(
        self,
        link: bool,
        tracer: Tracer | None = None,
        client: Mapping[str, Any] | None = None,
        mode: RecordMode = RecordMode.SPAN,
    ) -> None:
        self.current: RecordSpan | None = None
        self.entered: Any = None  # context mode: the open record's, for `leave`
        self.iterating = False
        self.link = link
        self.tracer = tracer
        self.client: Mapping[str, Any] | None = client
        self.attributes = ProcessAttributes(client)  # of `client`: remade when it is replaced
        self.mode = RecordMode(mode)

    def end_current(self, exc: BaseException | None = None) -> None:
        """End the open record's process span (`exc`: an error escaping its handling) or, in
        context mode, restore the context from before it."""
        entered = self.entered
        if entered is not None:
            self.entered = None
            if VAR is None:
                leave(entered)
            else:  # `leave`, inlined: this runs once per record
                try:
                    VAR.reset(entered)
                except (ValueError, RuntimeError):
                    pass
        current = self.current
        if current is not None:
            self.current = None
            current.end(exc)

    def open_record(self, record: Any) -> None:
        """The previous record's scope is over; `record` (None or an event: nothing) gets its
        process span (or, in context mode, its context), current until the next record or
        close."""
        if record is not None and not is_event(record):
            self.open(record, headers_of(record))
        else:
            self.end_current()

    def open(self, record: Any, headers: Any = _UNREAD, remote: Context | None = None) -> None:
        """`open_record` for a client whose records are never events (kafka-python, aiokafka:
        `record` is a record or None; `headers`: its headers if already read; `remote`: the
        context extracted from them, if already extracted)."""
        if self.entered is not None or self.current is not None:
            self.end_current()
        if record is None:
            return
        if self.mode is _CONTEXT:
            # `enter_record`, inlined: this runs once per record
            raw = record.headers if headers is _UNREAD else headers
            ctx = context_from_headers(raw) if raw else EMPTY
            if ctx is EMPTY:
                ctx = otel_context.get_current()
            self.entered = enter(ctx) if VAR is None else VAR.set(ctx)
        elif self.link:
            self.current = RecordSpan(
                record, link=True, tracer=self.tracer, client=self.client, remote=remote
            )
        else:
            # the producer's context decides: a process span nobody would record (an unsampled
            # producer, sampled out by ParentBased) is not made — the record gets its context
            # current, as in context mode
            tracer = _tracer(self.tracer)
            if remote is None and _remembered and _polled.contexts:
                remote = _polled.take(record)
            if remote is None:
                if headers is _UNREAD:
                    headers = record.headers
                remote = context_from_headers(headers) if headers else EMPTY
            span: Span | None = remote.get(_SPAN_KEY)  # type: ignore[assignment]  # producer's
            sc = span.get_span_context() if span is not None else None
            if sc is not None and not sc.trace_flags & 1 and sampled_out(tracer, sc):
                self.entered = enter(remote) if VAR is None else VAR.set(remote)
                return
            self.open_span(record, headers, remote, tracer)

    def open_span(self, record: Any, headers: Any, remote: Context, tracer: Tracer) -> None:
        """`record`'s process span, a child of its producer's context `remote` (extracted from
        its raw `headers`, `UNREAD` if not read yet), once the previous scope is over."""
        attributes = self.attributes
        if attributes.client is not self.client:  # set or replaced since
            attributes = self.attributes = ProcessAttributes(self.client)
        info = record_info(record, headers)
        name, attrs = attributes.of(
            info.topic, info.partition, info.offset, info.key, info.tombstone
        )
        scope = _new_scope(RecordSpan)  # `RecordSpan(...)` would read the record again
        scope._start(record, info.headers, remote, tracer, name, attrs)
        self.current = scope

    def receive(self, records: Any, operation: str, start: int) -> None:
        """One ``<operation> <topic>`` CLIENT span for a non-empty batch (a mapping of
        partition → records, or a list), started at `start` (ns), linked to up to `MAX_LINKS`
        records' creation contexts; an empty batch (or context mode) makes no span."""
        if self.mode is _CONTEXT:
            return
        batches = records.values() if isinstance(records, Mapping) else (records,)
        topics: set[str] = set()
        links: list[Link] = []
        count = 0
        for batch in batches:
            for record in batch:
                if is_event(record):
                    continue
                count += 1
                info = record_info(record)
                topics.add(info.topic)
                if count > MAX_LINKS:
                    continue
                ctx = context_from_headers(info.headers)
                if info.headers:
                    _polled.remember(record, ctx)
                sc = trace.get_current_span(ctx).get_span_context()
                if sc.is_valid:
                    links.append(Link(sc, {"messaging.kafka.offset": info.offset}))
        if not count:
            return
        names = sorted(topics)
        name = f"{operation} {names[0]}" if len(names) == 1 else operation
        span = _tracer(self.tracer).start_span(
            name,
            kind=SpanKind.CLIENT,
            links=links,
            attributes=receive_attributes(names, count, operation, self.client),
            start_time=start,
        )
        span.end()


def _state_or_none(consumer: Any) -> ConsumerState | None:
    state = getattr(consumer, "__dict__", {}).get(STATE) if consumer is not None else None
    return state if isinstance(state, ConsumerState) else None


def state_of(
    consumer: Any,
    link: bool = False,
    tracer: Tracer | None = None,
    client: Mapping[str, Any] | None = None,
    mode: RecordMode | str = RecordMode.SPAN,
    client_of: Callable[[Any], Mapping[str, Any]] | None = None,
) -> ConsumerState:
    """`consumer`'s state, made with these settings on first use (kept in its ``__dict__``);
    `client_of(consumer)` fills the client attributes once, when the consumer has its config."""
    state = _state_or_none(consumer)
    if state is None:
        state = consumer.__dict__[STATE] = ConsumerState(link, tracer, client, RecordMode(mode))
    if state.client is None and client_of is not None:
        state.client = client_of(consumer)
    return state


def now() -> int:
    """Wall clock in ns, for a receive span's start."""
    return time.time_ns()
