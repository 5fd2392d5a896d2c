"""How much work one input may cost the readers: bytes inflated (absolute and by ratio), bytes
of one document, items walked and CPU seconds.

Two sets: `FILE_LIMITS` for files and text a user hands the visualiser (generous: the file is
the user's own, and what is over a limit is reported while what was read is kept), and
`RECORD_LIMITS` for one record of a Kafka topic that any client may write (tight: a record over
a limit is refused as poison, so one record can never stall a stage).

The work budget (items, seconds) is carried in a context variable for the duration of one
decode (`budgeted`), so the readers' inner loops charge it without a parameter threaded
through every helper: `charge` costs one context-variable read when no budget is active.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

__all__ = [
    "FILE_LIMITS",
    "RECORD_LIMITS",
    "Budget",
    "Limits",
    "OverBudget",
    "budgeted",
    "charge",
    "current_budget",
    "file_limits",
]

MiB = 1 << 20
GiB = 1 << 30


@dataclasses.dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on one input. `max_inflated`: bytes a gzip input may inflate to; `max_ratio`:
    inflated bytes per compressed byte read so far (the first `ratio_floor` compressed bytes
    count as that many, so small inputs are never refused by ratio alone); `max_document`:
    bytes of one document held in memory (a JSON line, or a whole non-lines input);
    `max_items`: list entries, lines and spans walked; `max_seconds`: CPU seconds of the
    decoding thread. None means unbounded."""

    max_inflated: int
    max_ratio: int
    max_document: int
    ratio_floor: int = 64 * 1024
    max_items: int | None = None
    max_seconds: float | None = None

    def inflatable(self, compressed: int) -> int:
        """Bytes that `compressed` bytes of gzip may inflate to."""
        return min(self.max_inflated, self.max_ratio * max(compressed, self.ratio_floor))

    def inflation_problem(self, compressed: int) -> str:
        """Why more than `inflatable(compressed)` bytes are over the limits."""
        if self.inflatable(compressed) == self.max_inflated:
            return f"gzip input inflates to more than {self.max_inflated} bytes (limit)"
        return (
            f"gzip input inflates to more than {self.max_ratio} times its"
            f" {compressed} compressed bytes (limit; a gzip bomb?)"
        )


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    try:
        value = int(raw)
    except ValueError:
        return default
    return value if value > 0 else default


def file_limits() -> Limits:
    """`FILE_LIMITS` with the ``TRACECTX_VIZ_MAX_INFLATED``, ``TRACECTX_VIZ_MAX_RATIO`` and
    ``TRACECTX_VIZ_MAX_DOCUMENT`` environment variables (bytes, bytes, ratio) applied."""
    return dataclasses.replace(
        FILE_LIMITS,
        max_inflated=_env_int("TRACECTX_VIZ_MAX_INFLATED", FILE_LIMITS.max_inflated),
        max_ratio=_env_int("TRACECTX_VIZ_MAX_RATIO", FILE_LIMITS.max_ratio),
        max_document=_env_int("TRACECTX_VIZ_MAX_DOCUMENT", FILE_LIMITS.max_document),
    )


#: Files: JSON lines are streamed (memory holds one line), so the total may be large; one
#: document (a line, or a whole pretty-printed export) is held and parsed, which takes several
#: times its size, hence 256 MiB. A ratio of 200 is ten times what OTLP JSON with random ids
#: compresses by (10-20x) and a fifth of deflate's maximum (~1030x, runs of one byte).
FILE_LIMITS = Limits(max_inflated=16 * GiB, max_ratio=200, max_document=256 * MiB)

#: One Kafka record: 64 MiB inflated is 64 times Kafka's default ``message.max.bytes`` (1 MiB)
#: and 4 times a trace topic raised to 16 MiB, the most a producer batch should need; 100x is
#: five to ten times real span batches' ratio (protobuf 2-4x, OTLP JSON 10-20x). 1M items (an
#: 8k-span batch with 30 attributes each is 250k) and 5 CPU-seconds are several times what the
#: largest real batch costs and far under the consumer's poll limit, so a stage heartbeats in
#: time however hostile the record.
RECORD_LIMITS = Limits(
    max_inflated=64 * MiB,
    max_ratio=100,
    max_document=64 * MiB,
    max_items=1_000_000,
    max_seconds=5.0,
)


class OverBudget(Exception):
    """Raised inside a budgeted decode when it goes over a limit; caught by whoever opened
    the budget (`budgeted`), never seen by callers of the readers."""


class Budget:
    """The work done so far by one decode, checked against its `Limits` as it goes."""

    __slots__ = ("_check_at", "_deadline", "items", "limits", "refused")
    _CHECK_EVERY = 4096  # items between clock reads: a clock read costs more than an item

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.items = 0
        self.refused: str | None = None
        self._check_at = self._CHECK_EVERY
        self._deadline = (
            time.thread_time() + limits.max_seconds if limits.max_seconds is not None else None
        )

    def charge(self, items: int) -> None:
        """Count `items` more; `OverBudget` when over the item or time limit."""
        self.items += items
        limit = self.limits.max_items
        if limit is not None and self.items > limit:
            self.refuse(f"over the limit of {limit} items (entries, lines, spans) per input")
        if self.items >= self._check_at:
            self._check_at = self.items + self._CHECK_EVERY
            self.check_time()

    def check_time(self) -> None:
        if self._deadline is not None and time.thread_time() > self._deadline:
            self.refuse(f"over the limit of {self.limits.max_seconds} CPU seconds per input")

    def refuse(self, why: str) -> None:
        """Record why the input is refused and stop the decode."""
        self.refused = why
        raise OverBudget(why)


_CURRENT: ContextVar[Budget | None] = ContextVar("tracectx_viz_budget", default=None)


def current_budget() -> Budget | None:
    return _CURRENT.get()


def charge(items: int) -> None:
    """Count `items` against the active budget (if any); `OverBudget` when over it."""
    budget = _CURRENT.get()
    if budget is not None:
        budget.charge(items)


@contextmanager
def budgeted(limits: Limits) -> Iterator[Budget]:
    """A budget for the decode inside the block; `OverBudget` ends the block (swallowed) with
    `Budget.refused` saying why."""
    budget = Budget(limits)
    token = _CURRENT.set(budget)
    try:
        yield budget
    except OverBudget:
        pass
    finally:
        _CURRENT.reset(token)
