"""Where rule windows live: this process's memory, or Redis shared by every worker and pod.

Both count an error id once per window key, keep decayed scores for weighted rules, and grant
``claim``s (who fires, and the cooldown after) — in Redis with one atomic script per call.
`RedisWindows` also keeps firing alerts for another engine to adopt (`tracectx.alerting.handover`).
If Redis cannot be reached `RedisWindows` falls back to local windows, says so once in the log,
and tries Redis again after ``retry_after`` seconds.
"""

from __future__ import annotations

import heapq
import logging
import math
import threading
import time
from collections.abc import Sequence
from typing import Any, Protocol, TypeVar

from tracectx.alerting.handover import MAX_KEY, MAX_STATE

__all__ = ["Expiry", "MemoryWindows", "RedisWindows", "Windows", "compact"]

_log = logging.getLogger("tracectx.alerting")
MAX_IDS = 100_000
_Table = TypeVar("_Table", bound=dict[str, Any])


class Windows(Protocol):
    def add(self, key: str, error_id: str, ts: float, window: float) -> int | None:
        """Add an error to a count window; the count after it, None if the id was counted."""

    def count(self, key: str, ts: float, window: float) -> int:
        """Errors in the window ending at `ts`."""

    def add_score(
        self, key: str, error_id: str, ts: float, weight: float, decay: float, ttl: float
    ) -> float | None:
        """Decay the score to `ts` and add `weight`; None if the id was counted already.
        The score (and the ids it counted) is forgotten `ttl` seconds after its last add."""

    def score(self, key: str, ts: float, decay: float) -> float:
        """The score decayed to `ts`."""

    def claim(self, key: str, ttl: float) -> bool:
        """True for the first caller within `ttl` seconds (who fires; the cooldown)."""

    def release(self, key: str) -> None:
        """Forget a claim (the alert resolved)."""

    def expire(self, now: float) -> None:
        """Drop every window that expired by `now` (the engine calls it on each tick)."""


class _Ids:
    """Error ids in arrival order with their times: a set plus a queue, in one dict and one
    list (a deque costs ~760 bytes even when empty)."""

    __slots__ = ("head", "ids", "order")

    def __init__(self) -> None:
        self.ids: dict[str, float] = {}
        self.order: list[str] = []
        self.head = 0

    def __len__(self) -> int:
        return len(self.ids)

    def add(self, error_id: str, ts: float) -> bool:
        if error_id in self.ids:
            return False
        self.ids[error_id] = ts
        self.order.append(error_id)
        if len(self.ids) > MAX_IDS:
            self._pop()
        return True

    def _pop(self) -> None:
        order = self.order
        self.ids.pop(order[self.head], None)
        self.head += 1
        if self.head > 64 and self.head * 2 > len(order):  # compact: amortised O(1)
            del order[: self.head]
            self.head = 0

    def expire(self, floor: float) -> None:
        """Forget ids at or before `floor` (arrival order is time order, near enough)."""
        order, ids = self.order, self.ids
        while self.head < len(order) and ids[order[self.head]] <= floor:
            self._pop()
        if not ids and order:
            order.clear()
            self.head = 0


class _Window:
    """The ids a window counted. Most windows only ever count one error, so the first id is
    held as is (counted at `at()`), and an `_Ids` is made when a second one comes."""

    __slots__ = ("ids",)

    def __init__(self, error_id: str) -> None:
        self.ids: str | _Ids | None = error_id  # None: every id expired

    def at(self) -> float:
        """When the single id was counted (the window's newest error)."""
        raise NotImplementedError

    def expires(self) -> float:
        """When the window is over (and dropped)."""
        raise NotImplementedError

    def held(self) -> int:
        ids = self.ids
        return (1 if ids is not None else 0) if not isinstance(ids, _Ids) else len(ids)

    def forget_before(self, floor: float) -> None:
        """Forget ids counted at or before `floor`."""
        ids = self.ids
        if isinstance(ids, _Ids):
            ids.expire(floor)
        elif ids is not None and self.at() <= floor:
            self.ids = None

    def count_id(self, error_id: str, ts: float) -> bool:
        """Count `error_id` (at `ts`); False if it is counted already."""
        ids = self.ids
        if ids is None:
            self.ids = error_id
            return True
        if isinstance(ids, _Ids):
            return ids.add(error_id, ts)
        if ids == error_id:
            return False
        many = self.ids = _Ids()
        many.add(ids, self.at())
        many.add(error_id, ts)
        return True


# A count window's first error, as (error id, its time, window length): a tuple of atoms, which
# the garbage collector stops visiting; a million one-off groups cost no object to build or to
# traverse on each collection. A second error (or a read) turns it into the `_Count` it stands
# for: ``_Count(*first)``.
_First = tuple[str, float, float]


class _Count(_Window):
    __slots__ = ("newest", "window")

    def __init__(self, error_id: str, ts: float, window: float) -> None:
        self.ids = error_id
        self.newest = ts
        self.window = window

    def at(self) -> float:
        return self.newest

    def expires(self) -> float:
        return self.newest + self.window


class _Score(_Window):
    __slots__ = ("added", "last", "ttl", "value")

    def __init__(self, error_id: str, ts: float, ttl: float, weight: float) -> None:
        self.ids = error_id
        self.value, self.last = weight, ts
        self.added, self.ttl = ts, ttl

    def at(self) -> float:
        return self.added

    def decay_to(self, ts: float, decay: float) -> float:
        if ts > self.last:
            self.value *= decay ** ((ts - self.last) / 60.0)
            self.last = ts
        return self.value

    def expires(self) -> float:
        return self.added + self.ttl


class Expiry:
    """Which key of a table expires first: a heap with one entry per key. A popped key whose
    window moved on is pushed back with its new expiry, so a key costs one entry however many
    errors it counts, and dropping what expired costs O(log n) per key. `due` is the earliest
    expiry, so a caller can skip the call while nothing is due. A table's items are their
    expiry time (a number), windows (their ``expires()``) or a count window's `_First`."""

    __slots__ = ("due", "heap", "peak")

    def __init__(self) -> None:
        self.heap: list[tuple[float, str]] = []
        self.due = math.inf
        self.peak = 0  # the table's largest size since it was last compacted

    def push(self, when: float, key: str) -> None:
        """Track a key new to the table (hot paths inline this)."""
        heapq.heappush(self.heap, (when, key))
        if when < self.due:
            self.due = when

    def drop_expired(self, table: _Table, now: float) -> _Table:
        """Drop `table`'s items that expired by `now`; returns the table, or a compacted copy
        of it (`compact`: the table only grows between calls, so its peak is measured here)."""
        heap, dropped = self.heap, False
        peak = max(self.peak, len(table))
        while heap and heap[0][0] <= now:
            _, key = heapq.heappop(heap)
            item = table.get(key)
            if item is None:
                continue
            if isinstance(item, _Window):
                when = item.expires()
            elif type(item) is tuple:  # a count window's `_First`
                when = item[1] + item[2]
            else:
                when = item
            if when <= now:
                del table[key]
                dropped = True
            else:
                heapq.heappush(heap, (when, key))
        self.due = heap[0][0] if heap else math.inf
        if dropped:
            table, peak = compact(table, peak)
        self.peak = peak
        return table


def compact(table: _Table, peak: int) -> tuple[_Table, int]:
    """`table`, copied if it shrank below a quarter of `peak` (a dict never gives back its
    slots: 100k keys dropped would keep ~4 MB of empty table); and the peak to compare with
    next time. Amortised O(1) per deleted key."""
    if len(table) * 4 < peak:
        table = type(table)(table)
        return table, len(table)
    return table, max(peak, len(table))


class MemoryWindows:
    """Windows in this process (the default). A window is dropped once it expired (its newest
    error left it; a score `ttl` seconds after its last add; a claim after its cooldown), so
    memory follows the keys active within a window, not every key ever seen. A window that
    counted one error holds its id and times only (no set, no queue)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, _Count | _First] = {}
        self._scores: dict[str, _Score] = {}
        self._claims: dict[str, float] = {}
        self._count_expiry = Expiry()
        self._score_expiry = Expiry()
        self._claim_expiry: list[tuple[float, str]] = []

    @property
    def held(self) -> int:
        """How many windows (count and score) are held."""
        return len(self._counts) + len(self._scores)

    def _drop_expired(self, now: float) -> None:
        if self._count_expiry.due <= now:
            self._counts = self._count_expiry.drop_expired(self._counts, now)
        if self._score_expiry.due <= now:
            self._scores = self._score_expiry.drop_expired(self._scores, now)

    def expire(self, now: float) -> None:
        with self._lock:
            self._drop_expired(now)
            self._drop_claims(time.monotonic())

    def add(self, key: str, error_id: str, ts: float, window: float) -> int | None:
        with self._lock:
            expiry = self._count_expiry
            if expiry.due <= ts:
                self._counts = expiry.drop_expired(self._counts, ts)
            counts = self._counts
            win = counts.get(key)
            if win is None:
                counts[key] = (error_id, ts, window)
                when = ts + window  # `expiry.push`, inlined: once per new window
                heapq.heappush(expiry.heap, (when, key))
                if when < expiry.due:
                    expiry.due = when
                return 1
            if isinstance(win, tuple):
                win = counts[key] = _Count(*win)
            win.window = window
            win.forget_before(ts - window)
            if not win.count_id(error_id, ts):
                return None
            if ts > win.newest:
                win.newest = ts
            return win.held()

    def count(self, key: str, ts: float, window: float) -> int:
        with self._lock:
            self._drop_expired(ts)
            win = self._counts.get(key)
            if win is None:
                return 0
            if isinstance(win, tuple):
                win = self._counts[key] = _Count(*win)
            win.forget_before(ts - window)
            return win.held()

    def add_score(
        self, key: str, error_id: str, ts: float, weight: float, decay: float, ttl: float
    ) -> float | None:
        with self._lock:
            expiry = self._score_expiry
            if expiry.due <= ts:
                self._scores = expiry.drop_expired(self._scores, ts)
            score = self._scores.get(key)
            if score is None:
                score = self._scores[key] = _Score(error_id, ts, ttl, 0.0 + weight)
                expiry.push(ts + ttl, key)
                return score.value
            value = score.decay_to(ts, decay)
            score.forget_before(ts - ttl)  # as in Redis: ids older than the ttl are forgotten
            if not score.count_id(error_id, ts):
                return None
            score.added, score.ttl = max(score.added, ts), ttl
            score.value = value + weight
            return score.value

    def score(self, key: str, ts: float, decay: float) -> float:
        with self._lock:
            self._drop_expired(ts)
            score = self._scores.get(key)
            return 0.0 if score is None else score.decay_to(ts, decay)

    def _drop_claims(self, now: float) -> None:
        heap, claims = self._claim_expiry, self._claims
        while heap and heap[0][0] <= now:
            _, key = heapq.heappop(heap)
            until = claims.get(key)
            if until is not None and until <= now:
                del claims[key]

    def claim(self, key: str, ttl: float) -> bool:
        now = time.monotonic()
        with self._lock:
            self._drop_claims(now)
            if self._claims.get(key, 0.0) > now:
                return False
            self._claims[key] = now + ttl
            heapq.heappush(self._claim_expiry, (now + ttl, key))
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
# KEYS: score hash, ids zset. ARGV: now, weight, decay, error id ('' = read only), ttl.
# A read never creates a key nor touches a TTL: only adds set them, to the rule's ttl.
_SCORE = """
local now = tonumber(ARGV[1])
local added = 0
if ARGV[4] ~= '' then
  local ttl = tonumber(ARGV[5])
  added = redis.call('ZADD', KEYS[2], 'NX', now, ARGV[4])
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - ttl)
  redis.call('EXPIRE', KEYS[2], math.ceil(ttl))
elseif redis.call('EXISTS', KEYS[1]) == 0 then
  return {0, '0'}
end
local v = redis.call('HMGET', KEYS[1], 's', 't')
local s = tonumber(v[1]) or 0
local t = tonumber(v[2]) or now
if now > t then s = s * math.pow(tonumber(ARGV[3]), (now - t) / 60) else now = t end
if added == 1 then s = s + tonumber(ARGV[2]) end
redis.call('HSET', KEYS[1], 's', tostring(s), 't', tostring(now))
if added == 1 then
  redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[5])))
elseif redis.call('TTL', KEYS[1]) == -1 then
  redis.call('EXPIRE', KEYS[1], 3600)  -- never left without one (a key from elsewhere)
end
return {added, tostring(s)}
"""
# Firing alerts (`tracectx.alerting.handover`). KEYS: the group's zset (alert key -> deadline:
# when its owner is late), the alert's hash (owner, state), the claim. Every key written gets
# a TTL. ARGV: key, deadline, owner, state, ttl ms, take ('1': a new alert, whoever held it
# before, if the claim (ARGV[8]: its TTL in ms) is won; returns 0 if not, else the state another
# owner held if its deadline is not before ARGV[7], and at most ARGV[9] bytes, else 1).
_HOLD = """
if ARGV[6] == '1' and not redis.call('SET', KEYS[3], 1, 'NX', 'PX', ARGV[8]) then return 0 end
local held = redis.call('HGET', KEYS[2], 'owner')
local before = false
if held and held ~= ARGV[3] then
  if ARGV[6] ~= '1' then return 0 end
  local at = redis.call('ZSCORE', KEYS[1], ARGV[1])
  if at and tonumber(at) >= tonumber(ARGV[7])
    and redis.call('HSTRLEN', KEYS[2], 'state') <= tonumber(ARGV[9]) then
    before = redis.call('HGET', KEYS[2], 'state')
  end
end
redis.call('HSET', KEYS[2], 'owner', ARGV[3], 'state', ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[5]) then redis.call('PEXPIRE', KEYS[1], ARGV[5]) end
if before then return before end
return 1
"""
# What another client wrote there is read back bounded: members of at most ARGV[3] bytes
# (ARGV: now, limit) and states of at most ARGV[1] bytes ('' for a larger one).
_STALE = """
local found = {}
for _, key in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1], 'LIMIT', 0,
                                ARGV[2])) do
  if #key <= tonumber(ARGV[3]) then found[#found + 1] = key end
end
return found
"""
_STATE = """
if redis.call('HSTRLEN', KEYS[1], 'state') > tonumber(ARGV[1]) then return '' end
return redis.call('HGET', KEYS[1], 'state')
"""
# ARGV: key, now, deadline, owner, ttl ms. 1 if `owner` now holds it; a state gone is unlisted.
_ADOPT = """
local at = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not at or tonumber(at) >= tonumber(ARGV[2]) then return 0 end
if redis.call('EXISTS', KEYS[2]) == 0 then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return 0
end
redis.call('HSET', KEYS[2], 'owner', ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
return 1
"""
# ARGV: key, owner, '1' to forget the state (resolved) or '0' to leave it adoptable from now
# (ARGV[4]: its deadline becomes now, so it still counts as recent for a `take`).
_LET_GO = """
if redis.call('HGET', KEYS[2], 'owner') ~= ARGV[2] then return 0 end
if ARGV[3] == '1' then
  redis.call('DEL', KEYS[2])
  redis.call('ZREM', KEYS[1], ARGV[1])
else
  redis.call('ZADD', KEYS[1], ARGV[4], ARGV[1])
end
return 1
"""


# What a hand-over read takes from Redis, where any client may have written: a state of
# `MAX_STATE` characters is at most 4 bytes each in UTF-8.
_MAX_STATE_BYTES = 4 * MAX_STATE
_MAX_KEY_BYTES = 4 * MAX_KEY


def _text(value: bytes | str) -> str:
    """A Redis reply as text, whether the client decodes replies or not."""
    return value if isinstance(value, str) else value.decode("utf-8", "replace")


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
            for name, src in (
                ("add", _ADD),
                ("count", _COUNT),
                ("score", _SCORE),
                ("hold", _HOLD),
                ("adopt", _ADOPT),
                ("let_go", _LET_GO),
                ("stale", _STALE),
                ("state", _STATE),
            )
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
            _, value = self._scripts["score"](keys=keys, args=[ts, 0, decay, "", 0])
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

    def expire(self, now: float) -> None:
        """Redis drops its windows by TTL; this drops the local fallback's expired ones."""
        self._local.expire(now)

    # -- firing alerts (`tracectx.alerting.handover.Handover`) ------------------------------
    def _held(self, group: str, key: str) -> list[str]:
        return [self.prefix + "firing-by:" + group, self.prefix + "firing:" + key]

    def _hold(
        self,
        group: str,
        key: str,
        state: str,
        deadline: float,
        owner: str,
        ttl: float,
        cooldown: float | None = None,
        since: float = 0.0,
    ) -> Any:
        take = cooldown is not None
        args: list[str | int | float] = [
            key, deadline, owner, state, max(int(ttl * 1000), 1), "1" if take else "0", since,
            max(int((cooldown or 0.0) * 1000), 1), _MAX_STATE_BYTES,
        ]  # fmt: skip
        keys = [*self._held(group, key), self.prefix + "claim:" + key]
        return self._scripts["hold"](keys=keys, args=args)

    def claim_and_hold(
        self,
        group: str,
        key: str,
        cooldown: float,
        state: str,
        deadline: float,
        owner: str,
        ttl: float,
        since: float,
    ) -> tuple[bool, str | None]:
        def remote() -> tuple[bool, str | None]:
            found = self._hold(group, key, state, deadline, owner, ttl, cooldown, since)
            if isinstance(found, bytes | str):
                return True, _text(found)
            return bool(found), None

        return self._call(  # type: ignore[no-any-return]
            remote, lambda: (self._local.claim(key, cooldown), None)
        )

    def hold(
        self, group: str, key: str, state: str, deadline: float, owner: str, ttl: float
    ) -> bool:
        def remote() -> bool:
            return bool(self._hold(group, key, state, deadline, owner, ttl))

        return self._call(remote, lambda: True)  # type: ignore[no-any-return]

    def stale(
        self, groups: Sequence[str], now: float, limit: int
    ) -> list[tuple[str, str, str | None]]:
        def remote() -> list[tuple[str, str, str | None]]:
            pipe = self._client.pipeline(transaction=False)
            for group in groups:
                self._scripts["stale"](
                    keys=[self.prefix + "firing-by:" + group],
                    args=[repr(now), limit, _MAX_KEY_BYTES],
                    client=pipe,
                )
            found = [
                (group, _text(key))
                for group, keys in zip(groups, pipe.execute() if groups else [], strict=True)
                for key in keys
            ]
            pipe = self._client.pipeline(transaction=False)
            for _, key in found:
                self._scripts["state"](
                    keys=[self.prefix + "firing:" + key], args=[_MAX_STATE_BYTES], client=pipe
                )
            states = pipe.execute() if found else []
            return [
                (group, key, None if state is None else _text(state))
                for (group, key), state in zip(found, states, strict=True)
            ]

        return self._call(remote, list)  # type: ignore[no-any-return]

    def adopt(
        self, group: str, key: str, now: float, deadline: float, owner: str, ttl: float
    ) -> bool:
        def remote() -> bool:
            args: list[str | int | float] = [key, now, deadline, owner, max(int(ttl * 1000), 1)]
            return bool(self._scripts["adopt"](keys=self._held(group, key), args=args))

        return self._call(remote, lambda: False)  # type: ignore[no-any-return]

    def let_go(self, group: str, key: str, owner: str, forget: bool, now: float) -> None:
        def remote() -> None:
            args: list[str | float] = [key, owner, "1" if forget else "0", now]
            self._scripts["let_go"](keys=self._held(group, key), args=args)

        self._call(remote, lambda: None)
