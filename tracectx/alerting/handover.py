"""Firing alerts outlive the process that fired them.

With Redis windows, the engine that wins a window's claim owns the alert: it sends, re-sends
and resolves it. If the owner dies (SIGKILL, a lost pod, a stream instance killed mid-batch),
its alert would die with it: not delivered if the send was still queued, never re-sent, never
resolved. The claim would also stop every other engine from firing it. So the owner keeps the
alert's state in Redis (`Handover.hold`) and refreshes it on every re-send. A state left
unrefreshed for two re-send intervals is an orphan. The first engine holding its rule adopts
it (`Handover.adopt`, an atomic compare in Redis), sends it at once and goes on re-sending and
resolving it. Delivery is at least once: a receiver may get a send twice, and Alertmanager
de-duplicates it by labels.

The state is our own JSON: `encode_state` / `decode_state`. Reading it checks every field and
its size, like any data that came back from outside the process. The ownership rules are short
Lua scripts in `RedisWindows`. They are hand-written because no alerting library exposes an
engine's firing set.
"""

from __future__ import annotations

import json
from collections import deque
from typing import Any, Protocol, runtime_checkable

from tracectx.alerting.alerts import MAX_SAMPLES, Alert

__all__ = ["MAX_STATE", "Handover", "decode_state", "encode_state"]

MAX_STATE = 64 * 1024  # bytes of one alert's state; a larger one is not read back
_TEXT = ("key", "name", "kind", "resource", "error_type", "code", "service", "reason", "stack")


@runtime_checkable
class Handover(Protocol):
    """Where an engine keeps its firing alerts for another engine to adopt (`RedisWindows`)."""

    def hold(self, key: str, state: str, now: float, owner: str, ttl: float, take: bool) -> bool:
        """Store `state` as held by `owner` at `now`, kept `ttl` seconds. With `take` (a new
        alert) always; else only while `owner` still holds it. False: another owner adopted
        it, so this one must stop sending it."""

    def stale(self, before: float, limit: int) -> list[tuple[str, str]]:
        """Up to `limit` (key, state) pairs of alerts not held since `before`."""

    def adopt(self, key: str, before: float, now: float, owner: str, ttl: float) -> bool:
        """Become the owner of `key` if it is still not held since `before` (one winner)."""

    def unhold(self, key: str, owner: str) -> None:
        """Forget `key`'s state (the alert resolved), if `owner` holds it."""


def encode_state(alert: Alert, rule: str | None) -> str:
    """The alert and the name of its rule (None: a policy cluster) as JSON."""
    data: dict[str, Any] = {name: getattr(alert, name) for name in _TEXT}
    data.update(
        group=alert.group,
        started_at=alert.started_at,
        count=alert.count,
        score=alert.score,
        jaeger_template=alert.jaeger_template,
        keep_stack=alert.keep_stack,
        policy=alert.policy,
        trace_ids=list(alert.trace_ids),
        error_ids=list(alert.error_ids),
        error_types=sorted(alert.error_types),
    )
    return json.dumps({"rule": rule, "alert": data}, separators=(",", ":"))


def _strings(value: Any, limit: int) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise TypeError("not a list of strings")
    return value[-limit:]


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError("not a number")
    return float(value)


def decode_state(state: str | bytes) -> tuple[Alert, str | None] | None:
    """The (alert, rule name) `encode_state` wrote; None if `state` is anything else."""
    if len(state) > MAX_STATE:
        return None
    try:
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
        template, score = fields["jaeger_template"], fields["score"]
        if not (template is None or isinstance(template, str)):
            return None
        alert = Alert(
            **text,
            group=group,
            started_at=_number(fields["started_at"]),
            count=int(_number(fields["count"])),
            score=None if score is None else _number(score),
            jaeger_template=template,
            keep_stack=fields["keep_stack"] is True,
            policy=fields["policy"] is True,
            trace_ids=deque(_strings(fields["trace_ids"], MAX_SAMPLES), maxlen=MAX_SAMPLES),
            error_ids=deque(_strings(fields["error_ids"], MAX_SAMPLES), maxlen=MAX_SAMPLES),
            error_types=set(_strings(fields["error_types"], 16)),
        )
    except (ValueError, KeyError, TypeError, OverflowError, RecursionError):
        return None
    return alert, rule
