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

The state is our own JSON: `encode_state` / `decode_state`. Anyone who can write to the Redis
can write a state, so reading it checks every field's type, range and size, and the adopter
sends nothing the state says about itself (`rebuild`): the alert's name, reason, labels and
flags come from the adopting engine's rule (or, for a policy cluster, from the kind policy and
the alert's key), the group values must be the ones the key was made of, and every text is
bounded. With a key (`AlertEngine(state_key=)`, the YAML's ``state_key``, or
`STATE_KEY_ENV`), states are tagged with an HMAC-SHA256 of their JSON; a state without a valid
tag is dropped, and so is one whose signed deadline is older than the episode it would join (an
old state written back cannot move an alert's start earlier). The ownership rules are short
Lua scripts in `RedisWindows`. They are hand-written because no alerting library exposes an
engine's firing set.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import sys
from collections import deque
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from tracectx.alerting.alerts import MAX_LABEL_VALUE, MAX_SAMPLES, Alert
from tracectx.alerting.rules import KEY_SEP, MAX_GROUP_VALUE, Rule
from tracectx.kinds import Alerting, KindError, get_kind, policy_for

__all__ = [
    "MAX_KEY",
    "MAX_STATE",
    "MIN_STATE_KEY",
    "POLICY_GROUP",
    "STATE_KEY_ENV",
    "Handover",
    "decode_state",
    "encode_state",
    "rebuild",
    "state_key",
]

MAX_STATE = 64 * 1024  # characters of one alert's state: not written nor read back if larger
MAX_KEY = 8192  # characters of an alert's key: a longer one (not ours) is not adopted
MAX_STACK = 8192  # characters of a policy alert's stack, as events keep it
STATE_KEY_ENV = "TRACECTX_ALERT_STATE_KEY"
MIN_STATE_KEY = 16  # bytes: shorter keys are refused (guessable)
_TAG = "hmac-sha256:"  # a tagged state: _TAG, 64 hex digits, ":", the JSON
_TAGGED = len(_TAG) + 64 + 1
_HEX_ID = re.compile(r"[0-9a-f]{1,32}")
_KIND_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_POLICY_FIRES = (Alerting.IMMEDIATE, Alerting.ALWAYS)
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


def state_key(key: str | bytes | None = None) -> bytes | None:
    """The HMAC key for hand-over states: `key`, else the `STATE_KEY_ENV` variable, else None
    (states are then not authenticated). A key shorter than `MIN_STATE_KEY` bytes is refused
    (ValueError)."""
    if key is None:
        key = os.environ.get(STATE_KEY_ENV) or None
    if key is None:
        return None
    raw = key.encode() if isinstance(key, str) else bytes(key)
    if len(raw) < MIN_STATE_KEY:
        raise ValueError(f"an alert state key needs at least {MIN_STATE_KEY} bytes")
    return raw


def _tag(key: bytes, body: str) -> str:
    data = body.encode("utf-8", "surrogatepass")
    return hmac.new(key, data, hashlib.sha256).hexdigest()


def encode_state(
    alert: Alert, rule: str | None, key: bytes | None = None, deadline: float | None = None
) -> str | None:
    """The alert, the name of its rule (None: a policy cluster) and the `deadline` it is held
    until as JSON, tagged with an HMAC if `key` is given (so an old tagged state written back
    cannot pass for a recent one: see `decode_state`'s `since`); None if it is larger than
    `MAX_STATE` even without its stack."""
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
    room = MAX_STATE - (_TAGGED if key is not None else 0)
    whole = {"rule": rule, "alert": data, "deadline": deadline}
    state = json.dumps(whole, separators=(",", ":"), ensure_ascii=False)
    if len(state) > room and alert.stack:
        data["stack"] = ""
        state = json.dumps(whole, separators=(",", ":"), ensure_ascii=False)
    if len(state) > room:
        return None
    return state if key is None else f"{_TAG}{_tag(key, state)}:{state}"


def _verified(state: str, key: bytes | None) -> str | None:
    """The JSON of `state` if its tag is valid for `key` (any state, without a key)."""
    if not state.startswith(_TAG):
        return state if key is None else None
    body = state[_TAGGED:]
    if key is None:
        return body
    if (
        len(state) < _TAGGED
        or state[_TAGGED - 1] != ":"
        or not hmac.compare_digest(state[len(_TAG) : _TAGGED - 1], _tag(key, body))
    ):
        return None
    return body


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


def decode_state(
    state: str | bytes, key: bytes | None = None, since: float | None = None
) -> tuple[Alert, str | None] | None:
    """The (alert, rule name) `encode_state` wrote; None if `state` is anything else, has no
    valid tag for `key`, or (with a key, given `since`) was not held until `since` or later:
    an old tagged state written back. (Without a key anyone can write any state, so there is
    nothing to replay.) The alert is as the state says: `rebuild` it before sending it."""
    try:
        if len(state) > MAX_STATE:
            return None
        if isinstance(state, bytes):
            state = state.decode("utf-8")
        body = _verified(state, key)
        if body is None:
            return None
        data = json.loads(body)
        rule, fields = data["rule"], data["alert"]
        if not (rule is None or isinstance(rule, str)) or not isinstance(fields, dict):
            return None
        if (
            since is not None
            and key is not None
            and _number(data.get("deadline"), since, _LATEST) < since
        ):
            return None  # _number raises if it is missing or before `since`
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
    except (ValueError, KeyError, IndexError, TypeError, OverflowError, RecursionError):
        return None  # UnicodeDecodeError is a ValueError
    return alert, rule


def _text(value: str, limit: int = MAX_LABEL_VALUE) -> str:
    return value[:limit]


def rebuild(found: Alert, key: str, rule: Rule | None, now: float) -> Alert | None:
    """The alert an adopter may send for a state read back as `found` under `key`: None if the
    state cannot be this key's alert. Name, reason, flags and group keys come from `rule` (None:
    a policy cluster, whose kind, resource, error type and code are its key); the group values
    must make `key`; the kind must be one the rule counts (or whose policy alerts); ids that
    are not lowercase hex are left out (no Jaeger link from them), texts are cut, the start is
    not in the future. The caller sets the reason and the Jaeger template."""
    if len(key) > MAX_KEY or found.key != key:
        return None
    kind = found.kind
    if rule is not None:
        group = found.group
        if set(group) != set(rule.group_by) or any(
            len(v) > MAX_GROUP_VALUE for v in group.values()
        ):
            return None
        if rule.group_key(group) != key or not _KIND_NAME.fullmatch(kind):
            return None
        if rule.weight(kind) is None:
            return None
        name, policy, keep_stack = rule.name, False, False
        resource = rule.resource if rule.resource != "*" else _text(found.resource)
        error_type, code = _text(found.error_type), _text(found.code)
        group = {k: group[k] for k in rule.group_by}
    else:
        parts = key.split(KEY_SEP)
        if len(parts) != 5 or parts[0] != "policy":
            return None
        _, kind, resource, error_type, code = parts
        try:
            known = get_kind(kind)
        except KindError:
            return None
        alerting = policy_for(known).alerting
        if known.name != kind or alerting not in _POLICY_FIRES:
            return None
        name, policy, keep_stack = (
            f"tracectx_{kind.lower()}_error",
            True,
            alerting is Alerting.ALWAYS,
        )
        group = {}
    alert = Alert(
        key=key,
        name=name,
        kind=kind,
        resource=resource,
        group=group,
        started_at=min(found.started_at, now),
        error_type=error_type,
        code=code,
        service=_text(found.service),
        stack=_text(found.stack, MAX_STACK) if keep_stack else "",
        count=found.count,
        score=found.score if rule is not None and rule.weighted else None,
        keep_stack=keep_stack,
        policy=policy,
    )
    alert.trace_ids.extend(t for t in found.trace_ids if _HEX_ID.fullmatch(t))
    alert.error_ids.extend(e for e in found.error_ids if _HEX_ID.fullmatch(e))
    alert.error_types.update(_text(t) for t in found.error_types)
    return alert
