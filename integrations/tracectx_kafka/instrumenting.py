"""What the three instrumentors share: their options, checked before anything is patched."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from opentelemetry.trace import Tracer, TracerProvider

from tracectx.checked import check_options
from tracectx_kafka.consumer import RecordMode
from tracectx_kafka.producer import SendMode
from tracectx_kafka.tracing import tracer_of

__all__ = ["OPTIONS", "Options", "options"]

OPTIONS = frozenset({"tracer_provider", "send_mode", "link_to_producer", "record_mode"})


class Options(NamedTuple):
    """``instrument()`` keyword args, resolved: the tracer (None: the global provider's, looked
    up lazily), the send mode, whether process spans link to the producer, and the record mode
    (a process span per record, or its context only)."""

    tracer: Tracer | None
    mode: SendMode
    link: bool
    records: RecordMode = RecordMode.SPAN


def options(instrumentor: str, kwargs: Mapping[str, Any]) -> Options:
    """Resolve `kwargs`; an unknown (misspelt) option or a bad mode is an error, raised
    before anything is patched. The given provider's tracer is looked up once, here."""
    check_options(instrumentor, kwargs, OPTIONS)
    provider: TracerProvider | None = kwargs.get("tracer_provider")
    return Options(
        tracer_of(provider) if provider is not None else None,
        SendMode(kwargs.get("send_mode", SendMode.SPAN)),
        bool(kwargs.get("link_to_producer", False)),
        RecordMode(kwargs.get("record_mode", RecordMode.SPAN)),
    )
