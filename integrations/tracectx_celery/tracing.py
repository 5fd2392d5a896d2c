"""The Celery integration's tracer: ``tracectx_celery`` at tracectx's version, from the
``tracer_provider`` given to `instrument()`, else from the global provider at the time of use
(never bound at import, before the app has set its provider)."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.trace import Tracer, TracerProvider

from tracectx import __version__

__all__ = ["TRACER_NAME", "provider", "tracer", "use_provider"]

TRACER_NAME = "tracectx_celery"
_provider: TracerProvider | None = None
_cached: tuple[TracerProvider, Tracer] | None = None


def use_provider(provider: TracerProvider | None) -> None:
    """Send the integration's spans to `provider` (None: the global provider)."""
    global _provider, _cached
    _provider, _cached = provider, None


def provider() -> TracerProvider:
    """The provider the integration's spans go to."""
    return _provider if _provider is not None else trace.get_tracer_provider()


def tracer() -> Tracer:
    """The tracer for the current provider (cached while the provider stays the same)."""
    global _cached
    current = provider()
    cached = _cached
    if cached is None or cached[0] is not current:
        cached = _cached = (current, current.get_tracer(TRACER_NAME, __version__))
    return cached[1]
