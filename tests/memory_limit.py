"""Memory bounds that are enforced, not measured: the address space of a process is limited
with ``RLIMIT_AS``, so going over the bound fails (MemoryError, or the process dies) instead of
passing on a machine with memory to spare."""

from __future__ import annotations

import resource
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["address_space_limit", "run_limited", "vm_size"]

MiB = 1 << 20


def vm_size() -> int:
    """This process's address space in bytes (``VmSize``)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmSize in /proc/self/status")


@contextmanager
def address_space_limit(extra_bytes: int) -> Iterator[None]:
    """Inside the block this process may map at most `extra_bytes` more than it had; the soft
    limit is put back afterwards (a process may always raise it back up to the hard one)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = vm_size() + extra_bytes
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def run_limited(
    setup: str, code: str, extra_bytes: int, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run `setup` then `code` in a new interpreter whose address space, from the end of
    `setup` on, may grow by at most `extra_bytes`."""
    script = "\n".join(
        [
            textwrap.dedent(setup),
            "import resource as _r",
            "from tests.memory_limit import vm_size as _vm",
            f"_r.setrlimit(_r.RLIMIT_AS, (_vm() + {extra_bytes}, _r.RLIM_INFINITY))",
            textwrap.dedent(code),
        ]
    )
    return subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=Path(__file__).resolve().parents[1],
    )
