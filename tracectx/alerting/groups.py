"""A cap on how many groups one rule tracks at once.

Group keys come from error metadata (``account_id``), which a caller may control: one error
each for a million accounts would otherwise make a million windows. `GroupLimiter` remembers,
per rule, the group keys active within their window (oldest first, dropped once expired) and
refuses a new key while ``max_groups`` are active. Each refusal is counted on the OTel counter
``tracectx.alerting.groups.overflow`` (attribute ``alert.rule``: the rule's name, which comes
from configuration, never from the error) and logged as a warning at most once per rule per
`WARN_INTERVAL_S`.
"""

from __future__ import annotations

import collections
import logging
import threading
import time

from tracectx.alerting.windows import compact
from tracectx.metrics import _counter

__all__ = ["DEFAULT_MAX_GROUPS", "OVERFLOW_COUNTER", "WARN_INTERVAL_S", "GroupLimiter"]

DEFAULT_MAX_GROUPS = 100_000
OVERFLOW_COUNTER = "tracectx.alerting.groups.overflow"
WARN_INTERVAL_S = 60.0
_log = logging.getLogger("tracectx.alerting")


class GroupLimiter:
    """Admits at most `max_groups` group keys per rule that are active within their window."""

    def __init__(self, max_groups: int = DEFAULT_MAX_GROUPS) -> None:
        if max_groups < 1:
            raise ValueError(f"max_groups must be >= 1, got {max_groups}")
        self.max_groups = max_groups
        self.overflowed: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()
        # rule -> group key -> when it expires; ordered by last use, so the front expires first
        self._active: dict[str, collections.OrderedDict[str, float]] = {}
        self._peaks: dict[str, int] = {}
        self._warned: dict[str, float] = {}

    def active(self, rule: str) -> int:
        """How many groups of `rule` are tracked."""
        return len(self._active.get(rule, ()))

    def admit(self, rule: str, key: str, ts: float, ttl: float) -> bool:
        """True if `key` may be counted for `rule` (it stays active until ``ts + ttl``); False,
        counted and (rate-limited) logged, when the rule already tracks `max_groups` others."""
        with self._lock:
            active = self._active.get(rule)
            if active is None:
                active = self._active[rule] = collections.OrderedDict()
            if _drop_expired(active, ts):
                active = self._compact(rule, active)
            until = active.get(key)
            if until is not None:
                active[key] = max(until, ts + ttl)
                active.move_to_end(key)
                return True
            if len(active) < self.max_groups:
                active[key] = ts + ttl
                self._peaks[rule] = max(self._peaks.get(rule, 0), len(active))
                return True
            self.overflowed[rule] += 1
            now = time.monotonic()
            last = self._warned.get(rule)
            warn = last is None or now - last >= WARN_INTERVAL_S
            if warn:
                self._warned[rule] = now
        _counter(
            OVERFLOW_COUNTER, "{error}", "Errors not counted: their rule tracks too many groups"
        ).add(1, {"alert.rule": rule})
        _log.log(
            logging.WARNING if warn else logging.DEBUG,
            "tracectx: alert rule %r tracks %d groups (max_groups); errors of new groups are not "
            "counted until some expire (%d so far)",
            rule,
            self.max_groups,
            self.overflowed[rule],
        )
        return False

    def expire(self, now: float) -> None:
        """Forget every group whose window ended by `now`."""
        with self._lock:
            for rule, active in list(self._active.items()):
                if _drop_expired(active, now):
                    self._compact(rule, active)

    def _compact(
        self, rule: str, active: collections.OrderedDict[str, float]
    ) -> collections.OrderedDict[str, float]:
        table, self._peaks[rule] = compact(active, self._peaks.get(rule, 0))
        self._active[rule] = table
        return table

    def forget(self, rule: str) -> None:
        """Forget `rule`'s groups (the rule was replaced)."""
        with self._lock:
            self._active.pop(rule, None)
            self._peaks.pop(rule, None)


def _drop_expired(active: collections.OrderedDict[str, float], now: float) -> bool:
    """Drop the front groups that expired by `now`; True if any was dropped."""
    dropped = False
    while active:
        key, until = next(iter(active.items()))
        if until > now:
            break
        del active[key]
        dropped = True
    return dropped
