"""tracectx for Kafka: producers, consumers, batches and dead-letter topics, for the three
Python clients — kafka-python 3.x, aiokafka and confluent-kafka.

One shared core (`headers`, `producer`, `consumer`, `dlq`: the header reading and writing, the
spans and the dead-letter envelope) behind three thin adapters:

- `tracectx_kafka.kafka_python` — ``KafkaInstrumentor``, ``TracedProducer``,
  ``TracedConsumer``, ``trace_producer``, ``trace_consumer`` (also importable from here);
- `tracectx_kafka.aiokafka` — ``AIOKafkaInstrumentor``, ``TracedAIOKafkaProducer``,
  ``TracedAIOKafkaConsumer``;
- `tracectx_kafka.confluent` — ``ConfluentKafkaInstrumentor``, ``TracedProducer``,
  ``TracedConsumer``.

This package imports no client: `send_to_dlq`, `dlq_error`, `process_record` and
`traced_records` work with the records and producers of any of them. Importing an adapter (or
its names from here, for kafka-python) without its client raises `ModuleNotFoundError`, which
``opentelemetry-instrument`` skips quietly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tracectx_kafka.consumer import (
    RecordContext,
    RecordMode,
    RecordSpan,
    process_record,
    traced_records,
)
from tracectx_kafka.dlq import ERROR_HEADER, dlq_error, send_to_dlq
from tracectx_kafka.producer import SendMode

if TYPE_CHECKING:
    from tracectx_kafka.kafka_python import (
        KafkaInstrumentor,
        TracedConsumer,
        TracedProducer,
        trace_consumer,
        trace_producer,
    )

__all__ = [
    "ERROR_HEADER",
    "KafkaInstrumentor",
    "RecordContext",
    "RecordMode",
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

_KAFKA_PYTHON = frozenset(
    {"KafkaInstrumentor", "TracedConsumer", "TracedProducer", "trace_consumer", "trace_producer"}
)


def __getattr__(name: str) -> Any:
    """kafka-python's names, imported on first use (ModuleNotFoundError without it)."""
    if name in _KAFKA_PYTHON:
        from tracectx_kafka import kafka_python

        return getattr(kafka_python, name)
    raise AttributeError(f"module 'tracectx_kafka' has no attribute {name!r}")
