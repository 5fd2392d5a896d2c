"""Which offsets may be committed: a record is done when every trace it fed has been handled.

Spans of one record may belong to several traces, and a trace's spans to several records;
committing a partition's offset past a record whose trace is still being assembled would lose
that trace on a restart. `OffsetTracker` keeps, per partition, the records not yet done, and
`committable()` gives the offset to commit: the oldest record still pending, or one past the
newest record seen. At-least-once: after a crash the new owner re-reads from there.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable

__all__ = ["OffsetTracker", "Position"]

Position = tuple[Hashable, int]  # (partition, offset)


class OffsetTracker:
    """Pending records per partition, and the offsets that are safe to commit."""

    def __init__(self) -> None:
        self._pending: dict[Hashable, dict[int, int]] = {}  # partition -> offset -> open traces
        self._next: dict[Hashable, int] = {}  # partition -> one past the newest offset seen
        self._committed: dict[Hashable, int] = {}

    def seen(self, partition: Hashable, offset: int, traces: int) -> None:
        """A record was read that fed `traces` traces (0: nothing to wait for)."""
        self._next[partition] = max(self._next.get(partition, 0), offset + 1)
        if traces > 0:
            self._pending.setdefault(partition, {})[offset] = traces

    def done(self, positions: Iterable[Position]) -> None:
        """One trace fed by each of these records has been handled."""
        for partition, offset in positions:
            records = self._pending.get(partition)
            if records is None or offset not in records:
                continue
            records[offset] -= 1
            if records[offset] <= 0:
                del records[offset]

    def committable(self) -> dict[Hashable, int]:
        """Partition -> offset to commit, for partitions whose safe offset moved."""
        out = {}
        for partition, nxt in self._next.items():
            pending = self._pending.get(partition)
            safe = min(pending) if pending else nxt
            if safe > self._committed.get(partition, -1):
                out[partition] = safe
        return out

    def safe_offset(self, partition: Hashable) -> int | None:
        """Where reading `partition` again loses nothing: its oldest pending record, or one past
        the newest record seen (None if nothing was read from it)."""
        if partition not in self._next:
            return None
        pending = self._pending.get(partition)
        return min(pending) if pending else self._next[partition]

    def committed(self, offsets: dict[Hashable, int]) -> None:
        """Record that `offsets` were committed."""
        self._committed.update(offsets)

    def forget(self, partitions: Iterable[Hashable]) -> None:
        """Partitions taken away: their pending records are the new owner's now."""
        for partition in partitions:
            self._pending.pop(partition, None)
            self._next.pop(partition, None)
            self._committed.pop(partition, None)
