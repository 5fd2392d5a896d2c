"""A cap on how many groups one rule tracks at once.

Group keys come from error metadata (``account_id``), which a caller may control: one error
each for a million accounts would otherwise make a million windows. `GroupLimiter` remembers,
per rule, the group keys active within their window (each until its last error's time plus the
rule's ttl; dropped once that passed, earliest first) and refuses a new key while
``max_groups`` are active. Each refusal is counted on the OTel counter
``tracectx.alerting.groups.overflow`` (attribute ``alert.rule``: the rule's name, which comes
from configuration, never from the error) and logged as a warning at most once per rule per
`WARN_INTERVAL_S`.
"""

from __future__ import annotations

import collections
import heapq
import logging
import threading
import time

from tracectx.alerting.windows import Expiry
from tracectx.metrics import _counter

__all__ = ["DEFAULT_MAX_GROUPS", "OVERFLOW_COUNTER", "WARN_INTERVAL_S", "GroupLimiter"]

DEFAULT_MAX_GROUPS = 100_000
OVERFLOW_COUNTER = "tracectx.alerting.groups.overflow"
WARN_INTERVAL_S = 60.0
_log = logging.getLogger("tracectx.alerting")


class _Active:
    """One rule's groups: key -> when it ends, and which ends first."""

    __slots__ = ("expiry", "until")

    def __init__(self) -> None:
        self.until: dict[str, float] = {}
        self.expiry = Expiry()

    def drop_expired(self, now: float) -> None:
        if self.expiry.due <= now:
            self.until = self.expiry.drop_expired(self.until, now)


class GroupLimiter:
    """Admits at most `max_groups` group keys per rule that are active within their window."""

    def __init__(self, max_groups: int = DEFAULT_MAX_GROUPS) -> None:
        if max_groups < 1:
            raise ValueError(f"max_groups must be >= 1, got {max_groups}")
        self.max_groups = max_groups
        self.overflowed: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()
        self._active: dict[str, _Active] = {}
        self._warned: dict[str, float] = {}

    def active(self, rule: str) -> int:
        """How many groups of `rule` are tracked."""
        found = self._active.get(rule)
        return 0 if found is None else len(found.until)

    def admit(self, rule: str, key: str, ts: float, ttl: float) -> bool:
        """True if `key` may be counted for `rule` (it stays active until ``ts + ttl``); False,
        counted and (rate-limited) logged, when the rule already tracks `max_groups` others."""
        with self._lock:
            active = self._active.get(rule)
            if active is None:
                active = self._active[rule] = _Active()
            if active.expiry.due <= ts:
                active.drop_expired(ts)
            table = active.until
            until = table.get(key)
            if until is not None:
                if ts + ttl > until:
                    table[key] = ts + ttl
                return True
            if len(table) < self.max_groups:
                table[key] = when = ts + ttl
                expiry = active.expiry  # `expiry.push`, inlined: once per new group
                heapq.heappush(expiry.heap, (when, key))
                if when < expiry.due:
                    expiry.due = when
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
            for active in self._active.values():
                active.drop_expired(now)

    def forget(self, rule: str) -> None:
        """Forget `rule`'s groups (the rule was replaced)."""
        with self._lock:
            self._active.pop(rule, None)
