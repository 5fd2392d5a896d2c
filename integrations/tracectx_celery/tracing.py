"""The Celery integration's tracer: ``tracectx_celery`` at tracectx's version, from the
``tracer_provider`` given to `instrument()`, else from the global provider at the time of use
(never bound at import, before the app has set its provider)."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.trace import Tracer, TracerProvider

from tracectx import __version__
from tracectx.tracing import ProviderCache

__all__ = ["TRACER_NAME", "provider", "tracer", "use_provider"]

TRACER_NAME = "tracectx_celery"
_provider: TracerProvider | None = None


def use_provider(provider: TracerProvider | None) -> None:
    """Send the integration's spans to `provider` (None: the global provider)."""
    global _provider
    _provider = provider


def provider() -> TracerProvider:
    """The provider the integration's spans go to."""
    return _provider if _provider is not None else trace.get_tracer_provider()


_tracers: ProviderCache[TracerProvider, Tracer] = ProviderCache(
    provider, lambda p: p.get_tracer(TRACER_NAME, __version__)
)


def tracer() -> Tracer:
    """The tracer for the current provider (cached while the provider stays the same)."""
    return _tracers.get()
