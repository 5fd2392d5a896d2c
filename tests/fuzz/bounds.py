"""What every property test of a reader of outside data asserts besides its own property: the
input is handled in under a second of CPU and within a memory bound (tracemalloc peak)."""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager

from hypothesis import HealthCheck, settings

from tests.helpers import Cost

__all__ = ["BUDGET", "bounded"]

#: The CI budget: enough examples to find the shapes that broke readers before, fast enough to
#: run on every push.
BUDGET = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@contextmanager
def bounded(seconds: float = 1.0, peak_bytes: int = 32 * 1024 * 1024) -> Iterator[None]:
    """The block takes under `seconds` of CPU time (and under ten times that by the wall clock,
    see `Cost`) and allocates under `peak_bytes` at its peak."""
    tracemalloc.start()
    cost = Cost()
    try:
        yield
        cost.stop()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    cost.assert_within(seconds)
    assert peak < peak_bytes, f"peak {peak} bytes"
