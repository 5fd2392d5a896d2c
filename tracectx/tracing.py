"""tracectx's own tracer, cached per tracer provider.

`trace.get_tracer()` is not free: in the SDK each call builds an InstrumentationScope (and a
deprecated InstrumentationInfo that touches the global warnings filters) under a lock — 24-40 µs,
more than the span it is for. So the tracer is looked up once per provider and reused; a provider
set later (or replaced in tests) is noticed by identity.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from opentelemetry import trace

from tracectx.version import __version__

__all__ = ["TRACER_NAME", "VERSION", "ProviderCache", "tracer"]

TRACER_NAME = "tracectx"
VERSION = __version__  # not importlib.metadata.version(): that scan costs ~10 ms of import

P = TypeVar("P")
T = TypeVar("T")


class ProviderCache(Generic[P, T]):
    """One object made from the current provider (a tracer, a logger), made again only when the
    provider changes — compared by identity, so a provider set later, or replaced in tests, is
    noticed. An explicitly given provider is not cached: look it up once and keep the result."""

    __slots__ = ("_current", "_entry", "_make")

    def __init__(self, current: Callable[[], P], make: Callable[[P], T]) -> None:
        self._current, self._make = current, make
        self._entry: tuple[P, T] | None = None

    def get(self, provider: P | None = None) -> T:
        if provider is not None:
            return self._make(provider)
        source = self._current()
        entry = self._entry  # one read: safe across threads (a race only makes it twice)
        if entry is None or entry[0] is not source:
            entry = self._entry = (source, self._make(source))
        return entry[1]


_tracers: ProviderCache[trace.TracerProvider, trace.Tracer] = ProviderCache(
    lambda: trace.get_tracer_provider(), lambda p: p.get_tracer(TRACER_NAME, VERSION)
)


def tracer(provider: trace.TracerProvider | None = None) -> trace.Tracer:
    """The ``tracectx`` tracer of `provider` (default: the global one), cached."""
    return _tracers.get(provider)
