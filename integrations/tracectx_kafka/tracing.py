"""The ``tracectx_kafka`` tracer, looked up once per tracer provider, never per message.

`trace.get_tracer()` costs 24-40 µs in the SDK — more than the span it is for — so the
default tracer is cached against the global provider (a provider set later is noticed by
identity), and the instrumentor looks up the tracer of its ``tracer_provider=`` once.
"""

from __future__ import annotations

from opentelemetry import trace

from tracectx.tracing import VERSION

__all__ = ["TRACER_NAME", "VERSION", "tracer", "tracer_of"]

TRACER_NAME = "tracectx_kafka"
_cache: tuple[object, trace.Tracer] | None = None


def tracer_of(provider: trace.TracerProvider) -> trace.Tracer:
    """The ``tracectx_kafka`` tracer of `provider` (a fresh lookup: call once, keep it)."""
    return provider.get_tracer(TRACER_NAME, VERSION)


def tracer(given: trace.Tracer | None = None) -> trace.Tracer:
    """`given` if set, else the tracer of the global provider (cached by its identity)."""
    global _cache
    if given is not None:
        return given
    provider = trace.get_tracer_provider()
    found = _cache
    if found is not None and found[0] is provider:
        return found[1]
    made = tracer_of(provider)
    _cache = (provider, made)
    return made
