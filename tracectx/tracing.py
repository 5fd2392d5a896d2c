"""tracectx's own tracer, cached per tracer provider.

`trace.get_tracer()` is not free: in the SDK each call builds an InstrumentationScope (and a
deprecated InstrumentationInfo that touches the global warnings filters) under a lock — 24-40 µs,
more than the span it is for. So the tracer is looked up once per provider and reused; a provider
set later (or replaced in tests) is noticed by identity.
"""

from __future__ import annotations

from importlib import metadata

from opentelemetry import trace

__all__ = ["TRACER_NAME", "VERSION", "tracer"]

TRACER_NAME = "tracectx"
try:
    VERSION = metadata.version("tracectx")
except metadata.PackageNotFoundError:  # running from a source tree that is not installed
    VERSION = "0"

_cache: tuple[object, trace.Tracer] | None = None


def tracer(provider: trace.TracerProvider | None = None) -> trace.Tracer:
    """The ``tracectx`` tracer of `provider` (default: the global one), cached."""
    global _cache
    source = provider if provider is not None else trace.get_tracer_provider()
    found = _cache
    if found is not None and found[0] is source:
        return found[1]
    made = source.get_tracer(TRACER_NAME, VERSION)
    if provider is None:
        _cache = (source, made)
    return made
