"""Tests whose memory bounds need a process of their own.

`bounded` measures the tracemalloc peak, which counts every thread's allocations, and
`address_space_limit` caps the whole process: in the full suite, daemon threads other tests
leave running (span processors' workers, kafka-python's I/O, HTTP servers) allocate, or start
a new arena, inside the block and fail a test that passes on its own. `own_process` runs the
test in a new pytest process, where only the code under test runs.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

__all__ = ["own_process"]

_ENV = "TRACECTX_TEST_OWN_PROCESS"
_ROOT = Path(__file__).resolve().parents[1]
F = TypeVar("F", bound=Callable[..., Any])


def own_process(test: F) -> F:
    """Run `test` (outermost decorator) in a new pytest process of its own, with its fixtures
    and hypothesis settings there; this process only checks that it passed."""

    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> Any:
        if os.environ.get(_ENV):
            return test(*args, **kwargs)
        node = os.environ["PYTEST_CURRENT_TEST"].rsplit(" ", 1)[0]
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", node],
            cwd=_ROOT,
            env={**os.environ, _ENV: "1"},
            capture_output=True,
            text=True,
            timeout=110,  # under pytest's own 120 s per test
        )
        assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
        return None

    return run  # type: ignore[return-value]
