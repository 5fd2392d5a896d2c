"""tracectx for kafka-python 3.x: producers, consumers, batches and dead-letter topics.

Three ways in, one behaviour::

    from tracectx_kafka import KafkaInstrumentor, TracedConsumer, TracedProducer
    KafkaInstrumentor().instrument()          # every KafkaProducer/KafkaConsumer
    producer = TracedProducer(bootstrap_servers=...)          # or only these
    consumer = trace_consumer(KafkaConsumer("orders", ...))    # or an existing one

``opentelemetry-instrument`` finds the instrumentor through the ``tracectx_kafka`` entry point.
`send_to_dlq` / `dlq_error` carry an error's identity through a dead-letter topic.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

try:
    import kafka
except ImportError as exc:
    # ModuleNotFoundError: `opentelemetry-instrument` skips a missing library quietly, while a
    # plain ImportError is logged with a full traceback on every start.
    raise ModuleNotFoundError(
        "tracectx_kafka needs kafka-python 3.x: pip install 'tracectx[kafka]'", name="kafka"
    ) from exc

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]
from opentelemetry.trace import TracerProvider

from tracectx_kafka import classification
from tracectx_kafka.consumer import (
    RecordSpan,
    TracedConsumer,
    _TracedConsumerMixin,
    process_record,
    trace_consumer,
    traced_close,
    traced_next,
    traced_poll,
    traced_records,
)
from tracectx_kafka.consumer import _state as _consumer_state
from tracectx_kafka.dlq import ERROR_HEADER, dlq_error, send_to_dlq
from tracectx_kafka.package import _instruments
from tracectx_kafka.producer import SendMode, TracedProducer, trace_producer, traced_send
from tracectx_kafka.tracing import tracer_of

__all__ = [
    "ERROR_HEADER",
    "KafkaInstrumentor",
    "RecordSpan",
    "SendMode",
    "TracedConsumer",
    "TracedProducer",
    "dlq_error",
    "process_record",
    "send_to_dlq",
    "trace_consumer",
    "trace_producer",
    "traced_records",
]

_PATCHED = ("send", "__next__", "poll", "close", "__exit__")
_OPTIONS = frozenset({"tracer_provider", "send_mode", "link_to_producer"})


class KafkaInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Patch `kafka.KafkaProducer` and `kafka.KafkaConsumer` in place.

    Keyword args of `instrument()`: ``tracer_provider`` (default: the global one),
    ``send_mode`` (``"span"``, default, or ``"propagate"``) and ``link_to_producer`` (process
    spans link to the producer instead of being its children); any other is a `TypeError`.
    """

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def _instrument(self, **kwargs: Any) -> None:
        unknown = sorted(set(kwargs) - _OPTIONS)
        if unknown:
            raise TypeError(f"KafkaInstrumentor.instrument() got unexpected option(s) {unknown}")
        provider: TracerProvider | None = kwargs.get("tracer_provider")
        tracer = tracer_of(provider) if provider is not None else None  # looked up once
        mode = SendMode(kwargs.get("send_mode", SendMode.SPAN))
        link = bool(kwargs.get("link_to_producer", False))
        producer, consumer = kafka.KafkaProducer, kafka.KafkaConsumer
        originals = {name: getattr(consumer, name) for name in _PATCHED[1:]}
        original_send = producer.send

        def send(self: Any, *args: Any, **kw: Any) -> Any:
            return traced_send(original_send.__get__(self), mode, args, kw, tracer)

        def own(self: Any) -> bool:
            if isinstance(self, _TracedConsumerMixin):
                return False
            _consumer_state(self, link, tracer)
            return True

        def next_(self: Any) -> Any:
            bound = originals["__next__"].__get__(self)
            return traced_next(bound, self) if own(self) else bound()

        def poll(self: Any, *args: Any, **kw: Any) -> Any:
            bound = originals["poll"].__get__(self)
            return traced_poll(bound, self, args, kw) if own(self) else bound(*args, **kw)

        def close(self: Any, *args: Any, **kw: Any) -> Any:
            bound = originals["close"].__get__(self)
            return traced_close(bound, self, args, kw) if own(self) else bound(*args, **kw)

        def exit_(self: Any, exc_type: Any, exc: Any, tb: Any) -> Any:
            if own(self):
                _consumer_state(self).end_current(exc)
            return originals["__exit__"](self, exc_type, exc, tb)

        classification.register(classification.INSTRUMENTOR)
        self._originals = {"send": original_send, **originals}
        producer.send = send
        for name, fn in (
            ("__next__", next_),
            ("poll", poll),
            ("close", close),
            ("__exit__", exit_),
        ):
            fn.__name__ = f"tracectx_{name.strip('_')}"
            setattr(consumer, name, fn)

    def _uninstrument(self, **kwargs: Any) -> None:
        for name in reversed(_PATCHED[1:]):
            setattr(kafka.KafkaConsumer, name, self._originals[name])
        kafka.KafkaProducer.send = self._originals["send"]
        classification.unregister(classification.INSTRUMENTOR)
