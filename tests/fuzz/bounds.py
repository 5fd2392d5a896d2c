"""What every property test of a reader of outside data asserts besides its own property: the
input is handled in under a second and within a memory bound (tracemalloc peak)."""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager

from hypothesis import HealthCheck, settings

__all__ = ["BUDGET", "bounded"]

#: The CI budget: enough examples to find the shapes that broke readers before, fast enough to
#: run on every push.
BUDGET = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@contextmanager
def bounded(seconds: float = 1.0, peak_bytes: int = 32 * 1024 * 1024) -> Iterator[None]:
    """The block takes under `seconds` and allocates under `peak_bytes` at its peak."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        yield
        elapsed = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert elapsed < seconds, f"took {elapsed:.3f}s"
    assert peak < peak_bytes, f"peak {peak} bytes"
