"""Where rule windows live: this process's memory, or Redis shared by every worker and pod.

Both count an error id once per window key, keep decayed scores for weighted rules, and grant
``claim``s (who fires, and the cooldown after) — in Redis with one atomic script per call. If
Redis cannot be reached `RedisWindows` falls back to local windows, says so once in the log,
and tries Redis again after ``retry_after`` seconds.
"""

from __future__ import annotations

import collections
import logging
import math
import threading
import time
from typing import Any, Protocol

__all__ = ["MemoryWindows", "RedisWindows", "Windows"]

_log = logging.getLogger("tracectx.alerting")
MAX_IDS = 100_000


class Windows(Protocol):
    def add(self, key: str, error_id: str, ts: float, window: float) -> int | None:
        """Add an error to a count window; the count after it, None if the id was counted."""

    def count(self, key: str, ts: float, window: float) -> int:
        """Errors in the window ending at `ts`."""

    def add_score(
        self, key: str, error_id: str, ts: float, weight: float, decay: float, ttl: float
    ) -> float | None:
        """Decay the score to `ts` and add `weight`; None if the id was counted already."""

    def score(self, key: str, ts: float, decay: float) -> float:
        """The score decayed to `ts`."""

    def claim(self, key: str, ttl: float) -> bool:
        """True for the first caller within `ttl` seconds (who fires; the cooldown)."""

    def release(self, key: str) -> None:
        """Forget a claim (the alert resolved)."""


class _Count:
    __slots__ = ("entries", "ids")

    def __init__(self) -> None:
        self.entries: collections.deque[tuple[float, str]] = collections.deque()
        self.ids: set[str] = set()

    def expire(self, floor: float) -> None:
        entries, ids = self.entries, self.ids
        while entries and entries[0][0] <= floor:
            ids.discard(entries.popleft()[1])


class _Score:
    __slots__ = ("ids", "last", "order", "value")

    def __init__(self, ts: float) -> None:
        self.value, self.last = 0.0, ts
        self.ids: set[str] = set()
        self.order: collections.deque[str] = collections.deque()

    def decay_to(self, ts: float, decay: float) -> float:
        if ts > self.last:
            self.value *= decay ** ((ts - self.last) / 60.0)
            self.last = ts
        return self.value


class MemoryWindows:
    """Windows in this process (the default)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, _Count] = collections.defaultdict(_Count)
        self._scores: dict[str, _Score] = {}
        self._claims: dict[str, float] = {}

    def add(self, key: str, error_id: str, ts: float, window: float) -> int | None:
        with self._lock:
            win = self._counts[key]
            win.expire(ts - window)
            if error_id in win.ids:
                return None
            win.entries.append((ts, error_id))
            win.ids.add(error_id)
            if len(win.entries) > MAX_IDS:
                win.ids.discard(win.entries.popleft()[1])
            return len(win.entries)

    def count(self, key: str, ts: float, window: float) -> int:
        with self._lock:
            win = self._counts.get(key)
            if win is None:
                return 0
            win.expire(ts - window)
            return len(win.entries)

    def add_score(
        self, key: str, error_id: str, ts: float, weight: float, decay: float, ttl: float
    ) -> float | None:
        with self._lock:
            score = self._scores.get(key)
            if score is None:
                score = self._scores[key] = _Score(ts)
            value = score.decay_to(ts, decay)
            if error_id in score.ids:
                return None
            score.ids.add(error_id)
            score.order.append(error_id)
            if len(score.order) > MAX_IDS:
                score.ids.discard(score.order.popleft())
            score.value = value + weight
            return score.value

    def score(self, key: str, ts: float, decay: float) -> float:
        with self._lock:
            score = self._scores.get(key)
            return 0.0 if score is None else score.decay_to(ts, decay)

    def claim(self, key: str, ttl: float) -> bool:
        now = time.monotonic()
        with self._lock:
            if self._claims.get(key, 0.0) > now:
                return False
            self._claims[key] = now + ttl
            return True

    def release(self, key: str) -> None:
        with self._lock:
            self._claims.pop(key, None)


_ADD = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[1]) - tonumber(ARGV[2]))
local added = redis.call('ZADD', KEYS[1], 'NX', ARGV[1], ARGV[3])
redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[2])) + 1)
return {added, redis.call('ZCARD', KEYS[1])}
"""
_COUNT = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[1]) - tonumber(ARGV[2]))
return redis.call('ZCARD', KEYS[1])
"""
_SCORE = """
local now = tonumber(ARGV[1])
local added = 0
if ARGV[4] ~= '' then
  added = redis.call('ZADD', KEYS[2], 'NX', now, ARGV[4])
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - tonumber(ARGV[5]))
  redis.call('EXPIRE', KEYS[2], math.ceil(tonumber(ARGV[5])))
end
local v = redis.call('HMGET', KEYS[1], 's', 't')
local s = tonumber(v[1]) or 0
local t = tonumber(v[2]) or now
if now > t then s = s * math.pow(tonumber(ARGV[3]), (now - t) / 60) else now = t end
if added == 1 then s = s + tonumber(ARGV[2]) end
redis.call('HSET', KEYS[1], 's', tostring(s), 't', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[5])))
return {added, tostring(s)}
"""


class RedisWindows:
    """Windows in Redis, shared by every process using the same URL and ``prefix``."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "tracectx:alerts:",
        timeout: float = 0.5,
        retry_after: float = 30.0,
        client: Any = None,
    ) -> None:
        import redis

        self.prefix = prefix
        self.retry_after = retry_after
        self._client = client or redis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout
        )
        self._scripts = {
            name: self._client.register_script(src)
            for name, src in (("add", _ADD), ("count", _COUNT), ("score", _SCORE))
        }
        self._local = MemoryWindows()
        self._down_until = 0.0
        self._lock = threading.Lock()

    @property
    def degraded(self) -> bool:
        """True while falling back to local windows."""
        return self._down_until > time.monotonic()

    def _call(self, fn: Any, fallback: Any) -> Any:
        if self.degraded:
            return fallback()
        try:
            result = fn()
        except Exception as exc:  # redis.RedisError, OSError: any failure means "not now"
            with self._lock:
                first = self._down_until == 0.0
                self._down_until = time.monotonic() + self.retry_after
            if first:
                _log.warning(
                    "tracectx: Redis unavailable (%s); alert windows are local to this process "
                    "until it is back",
                    exc,
                )
            return fallback()
        if self._down_until:
            with self._lock:
                self._down_until = 0.0
            _log.warning("tracectx: Redis is back; alert windows are shared again")
        return result

    def add(self, key: str, error_id: str, ts: float, window: float) -> int | None:
        def remote() -> int | None:
            added, count = self._scripts["add"](
                keys=[self.prefix + key], args=[ts, window, error_id]
            )
            return int(count) if int(added) else None

        return self._call(remote, lambda: self._local.add(key, error_id, ts, window))  # type: ignore[no-any-return]

    def count(self, key: str, ts: float, window: float) -> int:
        def remote() -> int:
            return int(self._scripts["count"](keys=[self.prefix + key], args=[ts, window]))

        return self._call(remote, lambda: self._local.count(key, ts, window))  # type: ignore[no-any-return]

    def add_score(
        self, key: str, error_id: str, ts: float, weight: float, decay: float, ttl: float
    ) -> float | None:
        keys = [self.prefix + key, self.prefix + key + ":ids"]

        def remote() -> float | None:
            added, value = self._scripts["score"](
                keys=keys, args=[ts, weight, decay, error_id, math.ceil(ttl)]
            )
            return float(value) if int(added) else None

        return self._call(  # type: ignore[no-any-return]
            remote, lambda: self._local.add_score(key, error_id, ts, weight, decay, ttl)
        )

    def score(self, key: str, ts: float, decay: float) -> float:
        keys = [self.prefix + key, self.prefix + key + ":ids"]

        def remote() -> float:
            _, value = self._scripts["score"](keys=keys, args=[ts, 0, decay, "", 3600])
            return float(value)

        return self._call(remote, lambda: self._local.score(key, ts, decay))  # type: ignore[no-any-return]

    def claim(self, key: str, ttl: float) -> bool:
        def remote() -> bool:
            millis = max(int(ttl * 1000), 1)
            return bool(self._client.set(self.prefix + "claim:" + key, 1, nx=True, px=millis))

        return self._call(remote, lambda: self._local.claim(key, ttl))  # type: ignore[no-any-return]

    def release(self, key: str) -> None:
        def remote() -> None:
            self._client.delete(self.prefix + "claim:" + key)

        self._call(remote, lambda: self._local.release(key))
