"""The ``tracectx_kafka`` tracer, looked up once per tracer provider, never per message.

`trace.get_tracer()` costs 24-40 µs in the SDK — more than the span it is for — so the
default tracer is cached against the global provider (a provider set later is noticed by
identity), and the instrumentor looks up the tracer of its ``tracer_provider=`` once.
"""

from __future__ import annotations

from opentelemetry import trace

from tracectx.tracing import VERSION, ProviderCache, current_provider

__all__ = ["TRACER_NAME", "VERSION", "tracer", "tracer_of"]

TRACER_NAME = "tracectx_kafka"


def tracer_of(provider: trace.TracerProvider) -> trace.Tracer:
    """The ``tracectx_kafka`` tracer of `provider` (a fresh lookup: call once, keep it)."""
    return provider.get_tracer(TRACER_NAME, VERSION)


_tracers: ProviderCache[trace.TracerProvider, trace.Tracer] = ProviderCache(
    current_provider, tracer_of
)


def tracer(given: trace.Tracer | None = None) -> trace.Tracer:
    """`given` if set, else the tracer of the global provider (cached by its identity)."""
    return given if given is not None else _tracers.get()
