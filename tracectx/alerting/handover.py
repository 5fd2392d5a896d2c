"""Firing alerts outlive the process that fired them.

With Redis windows, the engine that wins a window's claim owns the alert: it sends, re-sends
and resolves it. If the owner dies (SIGKILL, a lost pod, a stream instance killed mid-batch),
its alert would die with it: not delivered if the send was still queued, never re-sent, never
resolved. The claim would also stop every other engine from firing it. So the owner keeps the
alert's state in Redis (`Handover.hold`) with a deadline, pushed back on every re-send. An alert
past its deadline is an orphan. The first engine holding its rule (any engine that evaluates
policy, for a policy cluster) adopts it (`Handover.adopt`, an atomic compare in Redis), sends
it at once and goes on re-sending and resolving it. An owner that stops cleanly lets go of its
alerts so they are adopted at once. An engine that fires an alert still held by another one
(its claim, the cooldown, ran out while the alert was firing) takes it over with its first start
time, so receivers see one alert. Delivery is at least once: a receiver may get a send twice,
and Alertmanager de-duplicates it by labels.

The state is our own JSON: `encode_state` / `decode_state`. Reading it checks every field's
type, range and size, like any data that came back from outside the process. The ownership
rules are short Lua scripts in `RedisWindows`. They are hand-written because no alerting
library exposes an engine's firing set.
"""

from __future__ import annotations

import json
import sys
from collections import deque
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from tracectx.alerting.alerts import MAX_SAMPLES, Alert

__all__ = ["MAX_STATE", "POLICY_GROUP", "Handover", "decode_state", "encode_state"]

MAX_STATE = 64 * 1024  # characters of one alert's state: not written nor read back if larger
POLICY_GROUP = (
    "\x1fpolicy"  # where policy clusters are held (apart from rules, unless one is so named)
)
_LATEST = 253402300799.0  # 9999-12-31T23:59:59Z: the last start time a datetime can show
_TEXT = ("key", "name", "kind", "resource", "error_type", "code", "service", "reason", "stack")


@runtime_checkable
class Handover(Protocol):
    """Where an engine keeps its firing alerts for another engine to adopt (`RedisWindows`).
    Alerts are held by group: a rule's name, or `POLICY_GROUP`."""

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
        """`Windows.claim` and, if won, in the same atomic step: store a new alert's `state`
        as held by `owner` until `deadline`, kept `ttl` seconds, whoever held `key` before.
        Returns (won, the state another owner held if its deadline was not before `since`:
        an older one is a past episode, not this alert)."""

    def hold(
        self, group: str, key: str, state: str, deadline: float, owner: str, ttl: float
    ) -> bool:
        """Store `state` as `claim_and_hold` does, but only while `owner` still holds `key`. False:
        another engine adopted it, so this one must stop sending it."""

    def stale(
        self, groups: Sequence[str], now: float, limit: int
    ) -> list[tuple[str, str, str | None]]:
        """(group, key, state) of up to `limit` alerts per group past their deadline at `now`
        (state None: it expired)."""

    def adopt(
        self, group: str, key: str, now: float, deadline: float, owner: str, ttl: float
    ) -> bool:
        """Become the owner of `key`, until `deadline`, if it is still past its deadline at
        `now` (one winner). An expired state is unlisted instead."""

    def let_go(self, group: str, key: str, owner: str, forget: bool, now: float) -> None:
        """If `owner` holds `key`: forget it (resolved), or leave it adoptable from `now`
        (stopping)."""


def encode_state(alert: Alert, rule: str | None) -> str | None:
    """The alert and the name of its rule (None: a policy cluster) as JSON; None if it is
    larger than `MAX_STATE` even without its stack."""
    data: dict[str, Any] = {name: getattr(alert, name) for name in _TEXT}
    data.update(
        group=alert.group,
        started_at=alert.started_at,
        count=alert.count,
        score=alert.score,
        keep_stack=alert.keep_stack,
        policy=alert.policy,
        trace_ids=list(alert.trace_ids),
        error_ids=list(alert.error_ids),
        error_types=sorted(alert.error_types),
    )
    state = json.dumps({"rule": rule, "alert": data}, separators=(",", ":"), ensure_ascii=False)
    if len(state) > MAX_STATE and alert.stack:
        data["stack"] = ""
        state = json.dumps({"rule": rule, "alert": data}, separators=(",", ":"), ensure_ascii=False)
    return state if len(state) <= MAX_STATE else None


def _strings(value: Any, limit: int) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise TypeError("not a list of strings")
    return value[-limit:]


def _number(value: Any, low: float, high: float) -> float:
    """`value` as a finite float within [low, high]."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError("not a number")
    number = float(value)
    if not (low <= number <= high):  # also NaN
        raise ValueError("out of range")
    return number


def decode_state(state: str | bytes) -> tuple[Alert, str | None] | None:
    """The (alert, rule name) `encode_state` wrote; None if `state` is anything else. The
    alert has no Jaeger template: the engine adopting it sets its own."""
    try:
        if len(state) > MAX_STATE:
            return None
        data = json.loads(state)
        rule, fields = data["rule"], data["alert"]
        if not (rule is None or isinstance(rule, str)) or not isinstance(fields, dict):
            return None
        text = {name: fields[name] for name in _TEXT}
        group = fields["group"]
        if not all(isinstance(v, str) for v in text.values()) or not isinstance(group, dict):
            return None
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in group.items()):
            return None
        score = fields["score"]
        alert = Alert(
            **text,
            group=group,
            started_at=_number(fields["started_at"], 0.0, _LATEST),
            count=int(_number(fields["count"], 0, 2**53)),
            score=None
            if score is None
            else _number(score, -sys.float_info.max, sys.float_info.max),
            keep_stack=fields["keep_stack"] is True,
            policy=fields["policy"] is True,
            trace_ids=deque(_strings(fields["trace_ids"], MAX_SAMPLES), maxlen=MAX_SAMPLES),
            error_ids=deque(_strings(fields["error_ids"], MAX_SAMPLES), maxlen=MAX_SAMPLES),
            error_types=set(_strings(fields["error_types"], 16)),
        )
    except (ValueError, KeyError, TypeError, OverflowError, RecursionError):
        return None
    return alert, rule
