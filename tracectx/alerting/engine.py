"""The alert engine: error events in, alerts out.

For every event, each matching rule counts it into the window of its group (``group_by``
values); a rule whose window crosses its threshold fires once — the process that wins the
window's claim fires, and the claim is the cooldown. Independently, the kind policy fires on
the first sighting of an error whose kind alerts ``immediate`` (FATAL) or ``always`` (UNKNOWN,
with the stack), one alert per kind + resource + error type + code cluster. `tick()` re-sends firing
alerts and resolves those whose condition cleared. `submit()` + `start()` run all of it on a
background thread, so span processing never waits for Redis or a receiver. Rules are found
by the event's kind and resource (`RuleIndex`), not scanned; how many groups a rule tracks is
capped (`GroupLimiter`), and `tick()` drops expired windows. An alert carries the trace and
error ids of the last errors (`MAX_SAMPLES`) that led to it; they are kept per group only once
its window nears the threshold (`Rule.sample_above`), so a million one-off groups cost no
samples. (Several processes adding to one Redis window may see its value jump: their alerts
may then carry fewer of the errors before the crossing.) With Redis windows a firing alert is
kept in Redis too, and adopted by another engine if its owner stops (`handover`).
"""

from __future__ import annotations

import collections
import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from tracectx import semconv as sc
from tracectx.alerting.alerts import MAX_SAMPLES, Alert
from tracectx.alerting.delivery import join_queue
from tracectx.alerting.events import ErrorEvent
from tracectx.alerting.groups import DEFAULT_MAX_GROUPS, GroupLimiter
from tracectx.alerting.handover import (
    POLICY_GROUP,
    STATE_KEY_ENV,
    Handover,
    decode_state,
    encode_state,
    rebuild,
)
from tracectx.alerting.handover import state_key as read_state_key
from tracectx.alerting.index import RuleIndex
from tracectx.alerting.rules import KEY_SEP, Action, Rule
from tracectx.alerting.sinks import CallableSink, LogSink, Sink
from tracectx.alerting.windows import MemoryWindows, Windows
from tracectx.kinds import Alerting, KindError, get_kind, policy_for

__all__ = ["AlertEngine"]

_log = logging.getLogger("tracectx.alerting")
_SEP = KEY_SEP
_POLICY_FIRES = (Alerting.IMMEDIATE, Alerting.ALWAYS)
MAX_REMEMBERED = 10_000
_POLICY = "(policy clusters)"  # their name in the group limiter (a rule so named shares its cap)
ORPHAN_AFTER = 2  # re-send intervals (or ticks) without a refresh before an alert is adopted
MIN_ORPHAN_AGE = 5.0  # seconds, whatever the intervals
MAX_ADOPTED = 100  # orphans looked at per tick and group
_warned_unauthenticated = False


class _LRU(collections.OrderedDict[str, Any]):
    """Insertion-ordered and bounded: the oldest entry goes first."""

    def remember(self, key: str, value: Any) -> None:
        self[key] = value
        if len(self) > MAX_REMEMBERED:
            self.popitem(last=False)


class _Firing:
    __slots__ = ("actions", "alert", "last_sent", "rule")

    def __init__(self, alert: Alert, rule: Rule | None, actions: tuple[Action, ...]) -> None:
        self.alert, self.rule, self.actions = alert, rule, actions
        self.last_sent = 0.0


class AlertEngine:
    """Rules + windows + sinks. See the module docs.

    Args:
        rules: initial rules (more with `add_rule`).
        sinks: named sinks rules' ``actions`` refer to; ``"log"`` is always there.
        windows: `MemoryWindows` (default) or `RedisWindows` to count across processes.
        default_actions: where policy alerts and rules without actions go.
        jaeger_template: e.g. ``"http://localhost:16686/trace/{trace_id}"``.
        resend_interval: seconds between re-sends of a firing alert. With Redis windows, an
            alert its owner has not re-sent for two of its intervals (or ticks, and at least
            5 s) is adopted by another engine.
        cluster_quiet: seconds without a new error (in any process sharing the windows) before
            a policy alert resolves.
        tick_interval: how often the background thread runs `tick()`.
        max_groups: how many groups (``group_by`` values) one rule tracks at once, and how
            many policy clusters; errors of further groups are not counted until some expire
            (counted on ``tracectx.alerting.groups.overflow``). Group values come from error
            metadata, so this bounds what a flood of distinct values can cost.
        policy_alerts: False for an engine that evaluates its rules only (the kind policy is
            evaluated elsewhere, e.g. a stream's per-rule engines): it neither fires nor adopts
            policy alerts.
        state_key: with Redis windows, the key (at least 16 bytes) that authenticates the
            firing alerts engines hand over (an HMAC); default: the ``TRACECTX_ALERT_STATE_KEY``
            environment variable. Every engine sharing the Redis needs the same key; with one,
            states without a valid tag are dropped (counted in `refused`). Without one, states
            are not authenticated (see SECURITY.md).
    """

    def __init__(
        self,
        rules: Iterable[Rule] = (),
        *,
        sinks: Mapping[str, Sink] | None = None,
        windows: Windows | None = None,
        default_actions: Iterable[Action] = ("log",),
        jaeger_template: str | None = None,
        resend_interval: float = 60.0,
        cluster_quiet: float = 300.0,
        tick_interval: float = 1.0,
        max_queue: int = 10_000,
        clock: Callable[[], float] = time.time,
        max_groups: int = DEFAULT_MAX_GROUPS,
        policy_alerts: bool = True,
        state_key: str | bytes | None = None,
    ) -> None:
        self.rules: list[Rule] = list(rules)
        self._index = RuleIndex(self.rules)
        self._indexed = self.rules  # the list `_index` was built from
        self.sinks: dict[str, Sink] = {"log": LogSink(), **(sinks or {})}
        self.windows: Windows = windows if windows is not None else MemoryWindows()
        self.default_actions = tuple(default_actions)
        if jaeger_template and "{trace_id}" not in jaeger_template:
            jaeger_template = jaeger_template.rstrip("/") + "/trace/{trace_id}"
        self.jaeger_template = jaeger_template
        self.resend_interval = resend_interval
        self.cluster_quiet = cluster_quiet
        self.tick_interval = tick_interval
        self.clock = clock
        self.dropped = 0
        self.groups = GroupLimiter(max_groups)
        self._lock = threading.RLock()
        self._firing: dict[str, _Firing] = {}
        self._metadata = _LRU()
        self._births = _LRU()
        self._samples = _LRU()  # window key -> recent (trace id, error id), for the alert
        self._alerting: dict[str, tuple[str, Alerting]] = {}  # kind -> policy, per tick
        self._queue: queue.Queue[ErrorEvent | None] = queue.Queue(max_queue)
        self._thread: threading.Thread | None = None
        self._unknown_actions: set[str] = set()
        self._handover = self.windows if isinstance(self.windows, Handover) else None
        self._owner = uuid.uuid4().hex  # this engine, as the holder of its firing alerts
        self.policy_alerts = policy_alerts
        self.adopted = 0
        self.errors = 0  # sends a sink raised on (logged)
        self.refused = 0  # hand-over states dropped: no valid tag, unreadable, not our alert
        self._state_key = read_state_key(state_key)
        global _warned_unauthenticated
        if self._handover is not None and self._state_key is None and not _warned_unauthenticated:
            _warned_unauthenticated = True  # once per process, not once per engine
            _log.warning(
                "tracectx: firing alerts handed over through Redis are not authenticated; "
                "set %s (or state_key) on every engine",
                STATE_KEY_ENV,
            )

    # -- configuration -------------------------------------------------------------------
    def add_rule(self, rule: Rule) -> Rule:
        """Add (or replace, by name) a rule."""
        with self._lock:
            self.rules = [r for r in self.rules if r.name != rule.name] + [rule]
        self.groups.forget(rule.name)
        self._reindex()
        return rule

    def _reindex(self) -> RuleIndex:
        """Index `rules` (also if a caller changed the list in place, e.g. appended)."""
        with self._lock:
            self._index = RuleIndex(self.rules)
            self._indexed = self.rules
            return self._index

    def add_sink(self, name: str, sink: Sink) -> None:
        self.sinks[name] = sink

    @property
    def firing(self) -> list[Alert]:
        with self._lock:
            return [f.alert for f in self._firing.values()]

    # -- evaluation ----------------------------------------------------------------------
    def _current_index(self) -> RuleIndex:
        index = self._index
        if self.rules is not self._indexed or len(self.rules) != len(index.rules):
            index = self._reindex()  # `rules` was reassigned or changed in place
        return index

    def observe(self, event: ErrorEvent) -> list[Alert]:
        """Evaluate one event now (in this thread); returns the alerts it fired."""
        index = self._index  # `_current_index`, inlined: once per event
        if self.rules is not self._indexed or len(self.rules) != len(index.rules):
            index = self._reindex()
        return self._observe(event, index)

    def observe_many(self, events: Iterable[ErrorEvent]) -> list[Alert]:
        """Evaluate events in order, as `observe` would one by one (the rules in force when
        the batch starts apply to all of it); returns the alerts they fired."""
        index = self._current_index()
        observe = self._observe
        fired: list[Alert] = []
        for event in events:
            alerts = observe(event, index)
            if alerts:
                fired += alerts
        return fired

    def _observe(self, event: ErrorEvent, index: RuleIndex) -> list[Alert]:
        metadata = event.metadata
        if metadata:
            remembered = self._metadata  # `_LRU.remember`, inlined: once per event
            remembered[event.error_id] = metadata
            if len(remembered) > MAX_REMEMBERED:
                remembered.popitem(last=False)
        else:
            metadata = self._metadata.get(event.error_id) or {}
        fired = []
        for rule, weight in index.plan(event):
            alert = self._apply_rule(rule, weight, event, metadata)
            if alert is not None:
                fired.append(alert)
        known = self._alerting.get(event.kind)
        if (known is None or known[1] in _POLICY_FIRES) and self.policy_alerts:
            alert = self._apply_policy(event)
            if alert is not None:
                fired.append(alert)
        return fired

    def _apply_rule(
        self, rule: Rule, weight: float, event: ErrorEvent, metadata: Mapping[str, Any]
    ) -> Alert | None:
        key = rule.group_key(metadata)
        if key is None:
            return None
        ts = event.timestamp
        firing = self._firing.get(key)
        if firing is None and not self.groups.admit(rule.name, key, ts, rule.ttl):
            return None
        value: float | None
        if rule.weighted:
            value = self.windows.add_score(
                key, event.error_id, ts, weight, rule.decay_factor, rule.ttl
            )
        else:
            value = self.windows.add(key, event.error_id, ts, rule.window)
        if value is None:
            return None
        if firing is not None:
            firing.alert.note(event)
            self._set_measure(firing.alert, rule, value)
            return None
        if value <= rule.sample_above:  # far below the threshold: not among the samples
            return None
        remembered = self._samples
        samples = remembered.get(key)
        if samples is None:  # a list, not a deque: a deque costs ~760 bytes empty
            remembered[key] = samples = []
            if len(remembered) > MAX_REMEMBERED:  # `_LRU.remember`, inlined
                remembered.popitem(last=False)
        samples.append((event.trace_id, event.error_id))
        if len(samples) > MAX_SAMPLES:
            del samples[0]
        if value <= rule.limit:
            return None
        cooldown = rule.cooldown or rule.window
        if self._handover is None and not self.windows.claim(key, cooldown):
            return None
        group = rule.group(metadata)
        assert group is not None  # as `group_key` found it
        alert = Alert(
            key=key,
            name=rule.name,
            kind=event.kind,
            resource=rule.resource if rule.resource != "*" else event.resource,
            group=dict(zip(rule.group_by, group, strict=True)),
            started_at=event.timestamp,
            reason=self._reason(rule),
            jaeger_template=self.jaeger_template,
        )
        alert.note(event)
        for trace_id, eid in self._samples.get(key, ()):
            if trace_id not in alert.trace_ids:
                alert.trace_ids.appendleft(trace_id)
            if eid not in alert.error_ids:
                alert.error_ids.appendleft(eid)
        self._set_measure(alert, rule, value)
        firing = _Firing(alert, rule, tuple(rule.actions) or self.default_actions)
        if self._handover is not None and not self._claim(firing, cooldown):
            return None
        self._samples.pop(key, None)
        return self._fire(firing)

    @staticmethod
    def _set_measure(alert: Alert, rule: Rule, value: float) -> None:
        if rule.weighted:
            alert.score = value
        else:
            alert.count = int(value)

    @staticmethod
    def _reason(rule: Rule) -> str:
        if rule.weighted:
            return (
                f"weighted error score above {rule.base_threshold} "
                f"(decay {rule.decay_factor}/min) on {rule.resource}"
            )
        kinds = "/".join(rule.kinds) or "any"
        by = f" for the same {', '.join(rule.group_by)}" if rule.group_by else ""
        return f"more than {rule.threshold:g} {kinds} errors{by} within {rule.window:g}s"

    @staticmethod
    def _policy_reason(kind_name: str, alerting: Alerting) -> str:
        return f"{kind_name} errors alert {alerting.value} by policy"

    def _apply_policy(self, event: ErrorEvent) -> Alert | None:
        known = self._alerting.get(event.kind)
        if known is None:
            try:
                kind = get_kind(event.kind)
            except KindError:
                kind = get_kind("UNKNOWN")
            if len(self._alerting) >= MAX_REMEMBERED:  # kinds come from error data
                self._alerting.clear()
            known = self._alerting[event.kind] = (kind.name, policy_for(kind).alerting)
        kind_name, alerting = known
        if alerting not in _POLICY_FIRES:  # most errors: checked first, it is the cheapest
            return None
        born_here = event.role == sc.ROLE_ORIGIN or (
            event.role == sc.ROLE_ABSORBED and bool(event.message or event.stack)
        )
        if not born_here or event.error_id in self._births:
            return None
        self._births.remember(event.error_id, True)
        # The code is part of the cluster: FATAL E_DISK and FATAL E_TEMPLATES on one route are
        # two causes, two alerts.
        key = _SEP.join(("policy", kind_name, event.resource, event.error_type, event.code))
        if key not in self._firing and not self.groups.admit(
            _POLICY, key, event.timestamp, self.cluster_quiet
        ):
            return None
        # The cluster's window is shared like a rule's: every process's errors keep it firing.
        count = self.windows.add(key, event.error_id, event.timestamp, self.cluster_quiet)
        firing = self._firing.get(key)
        if firing is not None:
            firing.alert.note(event)
            if count is not None:
                firing.alert.count = count
            return None
        if self._handover is None and not self.windows.claim(key, self.cluster_quiet):
            return None
        alert = Alert(
            key=key,
            name=f"tracectx_{kind_name.lower()}_error",
            kind=kind_name,
            resource=event.resource,
            group={},
            started_at=event.timestamp,
            error_type=event.error_type,
            code=event.code,
            policy=True,
            reason=self._policy_reason(kind_name, alerting),
            jaeger_template=self.jaeger_template,
            keep_stack=alerting is Alerting.ALWAYS,
        )
        alert.note(event)
        alert.count = max(alert.count, count or 0)
        firing = _Firing(alert, None, self.default_actions)
        if self._handover is not None and not self._claim(firing, self.cluster_quiet):
            return None
        return self._fire(firing)

    def _fire(self, firing: _Firing) -> Alert:
        with self._lock:
            self._firing[firing.alert.key] = firing
        self._deliver(firing)
        return firing.alert

    # -- hand-over (`tracectx.alerting.handover`) ------------------------------------------
    def _orphan_age(self) -> float:
        """How long this engine's alerts stay its own without a refresh."""
        return max(ORPHAN_AFTER * max(self.resend_interval, self.tick_interval), MIN_ORPHAN_AGE)

    def _hold_ttl(self) -> float:
        return max(10 * self._orphan_age(), 3600.0)

    @staticmethod
    def _group(firing: _Firing) -> str:
        return firing.rule.name if firing.rule is not None else POLICY_GROUP

    def _state(self, firing: _Firing, deadline: float) -> str | None:
        """The alert as held in Redis until `deadline` (tagged, with a key); None if too large
        to hand over (sent by this engine only)."""
        rule = firing.rule.name if firing.rule else None
        return encode_state(firing.alert, rule, self._state_key, deadline)

    def _claim(self, firing: _Firing, cooldown: float) -> bool:
        """Win the window's claim and hold the new alert in one atomic step (see `_hold`):
        an owner killed right after winning still leaves the alert to be adopted and sent.
        If another engine held this key's alert within the rule's window (still firing when
        the claim's cooldown ran out), this is the same alert: it keeps its start."""
        assert self._handover is not None
        now = self.clock()
        deadline, group, ttl = now + self._orphan_age(), self._group(firing), self._hold_ttl()
        alert, state = firing.alert, self._state(firing, deadline)
        if state is None:
            return self.windows.claim(alert.key, cooldown)
        recent = now - (firing.rule.ttl if firing.rule else self.cluster_quiet)
        won, before = self._handover.claim_and_hold(
            group, alert.key, cooldown, state, deadline, self._owner, ttl, recent
        )
        if not won:
            return False
        found = None if before is None else decode_state(before, self._state_key, recent)
        earlier = None  # another engine's state for this key, if it can be this rule's alert
        if found is not None and found[1] == (firing.rule.name if firing.rule else None):
            earlier = rebuild(found[0], alert.key, firing.rule, now)
        if earlier is not None and earlier.started_at < alert.started_at:
            alert.started_at = earlier.started_at
            self._hold(firing)
        return True

    def _hold(self, firing: _Firing) -> bool:
        """Keep the alert's state where another engine can adopt it; False if one did."""
        if self._handover is None:
            return True
        deadline = self.clock() + self._orphan_age()
        state = self._state(firing, deadline)
        if state is None:
            return True
        key, group, ttl = firing.alert.key, self._group(firing), self._hold_ttl()
        return self._handover.hold(group, key, state, deadline, self._owner, ttl)

    def _adopt_orphans(self) -> None:
        """Take over firing alerts whose owner stopped re-sending them (see `handover`)."""
        handover = self._handover
        if handover is None:
            return
        rules = {rule.name: rule for rule in self.rules}
        groups = [*rules, POLICY_GROUP] if self.policy_alerts else list(rules)
        now = self.clock()
        deadline, ttl = now + self._orphan_age(), self._hold_ttl()
        for group, key, state in handover.stale(groups, now, MAX_ADOPTED):
            if key in self._firing:
                continue
            if not handover.adopt(group, key, now, deadline, self._owner, ttl):
                continue  # another engine did, or the state expired
            found = None if state is None else decode_state(state, self._state_key, now - ttl)
            rule = rules.get(group)
            alert = None
            if found is not None and found[1] == (rule.name if rule is not None else None):
                alert = rebuild(found[0], key, rule, now)
            if alert is None:
                handover.let_go(group, key, self._owner, forget=True, now=now)  # nobody can send it
                if state is not None:
                    self.refused += 1
                    _log.warning(
                        "tracectx: firing alert state dropped from Redis (no valid tag, "
                        "unreadable, or not this rule's alert)"
                    )
                continue
            alert.reason = self._rebuilt_reason(alert, rule)
            alert.jaeger_template = self.jaeger_template
            actions = (tuple(rule.actions) if rule is not None else ()) or self.default_actions
            with self._lock:
                self._firing[key] = _Firing(alert, rule, actions)  # never sent: due now
            self.adopted += 1
            _log.info("tracectx: adopted firing alert %s; its owner stopped", alert.public_key)

    def _rebuilt_reason(self, alert: Alert, rule: Rule | None) -> str:
        if rule is not None:
            return self._reason(rule)
        return self._policy_reason(alert.kind, policy_for(get_kind(alert.kind)).alerting)

    def hand_off(self) -> None:
        """Leave this engine's firing alerts to others at once (it is stopping): with Redis
        windows, the next engine to tick adopts them, sends and resolves them."""
        if self._handover is None:
            return
        with self._lock:
            current = list(self._firing.items())
            self._firing.clear()
        now = self.clock()
        for key, firing in current:
            self._handover.let_go(self._group(firing), key, self._owner, forget=False, now=now)

    def _deliver(self, firing: _Firing) -> None:
        firing.last_sent = self.clock()
        for action in firing.actions:
            if callable(action):
                CallableSink(action).send(firing.alert)
                continue
            sink = self.sinks.get(action)
            if sink is not None:
                try:
                    sink.send(firing.alert)
                except Exception:  # one sink must not stop the others, nor the caller
                    self.errors += 1
                    _log.warning("tracectx: alert sink %r failed", action, exc_info=True)
            elif action not in self._unknown_actions:
                self._unknown_actions.add(action)
                _log.warning("tracectx: alert action %r names no sink; ignored", action)

    # -- time --------------------------------------------------------------------------
    def tick(self, now: float | None = None) -> list[Alert]:
        """Resolve alerts whose condition cleared, re-send the others when due; returns the
        alerts resolved."""
        now = self.clock() if now is None else now
        self._alerting.clear()  # policies may have changed: look them up again
        self._index.forget_kinds()
        self.windows.expire(now)  # memory follows the groups active within a window
        self.groups.expire(now)
        self._adopt_orphans()
        with self._lock:
            current = list(self._firing.items())
        resolved = []
        for key, firing in current:
            try:
                if self._tick_one(key, firing, now):
                    resolved.append(firing.alert)
            except Exception:  # one alert that cannot be sent must not stop the others
                _log.exception("tracectx: firing alert %s skipped", firing.alert.public_key)
        return resolved

    def _tick_one(self, key: str, firing: _Firing, now: float) -> bool:
        """Resolve `firing` (True) or re-send it when due."""
        if self._cleared(key, firing, now):
            firing.alert.resolved_at = now
            with self._lock:
                self._firing.pop(key, None)
            if firing.rule is None:
                self.windows.release(key)  # a cluster may fire again at its next error
            if self._handover is not None:
                self._handover.let_go(
                    self._group(firing), key, self._owner, forget=True, now=self.clock()
                )
            self._deliver(firing)
            return True
        if now - firing.last_sent >= self.resend_interval:
            if not self._hold(firing):
                with self._lock:  # another engine adopted it and sends it now
                    self._firing.pop(key, None)
                return False
            self._deliver(firing)
        return False

    def _cleared(self, key: str, firing: _Firing, now: float) -> bool:
        rule = firing.rule
        if rule is None:
            return self.windows.count(key, now, self.cluster_quiet) == 0
        if rule.weighted:
            return self.windows.score(key, now, rule.decay_factor) <= (rule.base_threshold or 0)
        return self.windows.count(key, now, rule.window) <= (rule.threshold or 0)

    # -- background --------------------------------------------------------------------
    def submit(self, event: ErrorEvent) -> None:
        """Queue an event for the background thread; never blocks (drops are counted)."""
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                _log.warning("tracectx: alert engine queue full; %d event(s) dropped", self.dropped)

    def start(self) -> AlertEngine:
        """Run submitted events and ticks on a daemon thread."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="tracectx-alert-engine", daemon=True
            )
            self._thread.start()
        return self

    def _run(self) -> None:
        next_tick = time.monotonic() + self.tick_interval
        while True:
            timeout = max(next_tick - time.monotonic(), 0.0)
            got = True
            try:
                event = self._queue.get(timeout=timeout)
            except queue.Empty:
                event, got = None, False
            try:
                if got and event is None:
                    return
                if event is not None:
                    self.observe(event)
                if time.monotonic() >= next_tick:
                    next_tick = time.monotonic() + self.tick_interval
                    self.tick()
            except Exception:  # one bad event or sink must not stop alerting
                _log.exception("tracectx: alert engine error")
            finally:
                if got:
                    self._queue.task_done()

    def drain(self, timeout: float = 10.0) -> bool:
        """Wait until every submitted event was evaluated (True if so within `timeout`)."""
        return join_queue(self._queue, timeout)

    def close(self) -> None:
        """Stop the thread, close every sink (sending what is queued), then hand the firing
        alerts over (`hand_off`): an heir's first send comes after this engine's last."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(5)
            self._thread = None
        for sink in self.sinks.values():
            sink.close()
        self.hand_off()
