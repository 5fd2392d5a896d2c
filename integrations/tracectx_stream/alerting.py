"""Alerting at fleet scale: the same rules, YAML and sinks, fed by the stream's error paths.

Each rule's windows are keyed by its group (``account_id``, …). To have exactly one instance own
a window, error events are re-keyed through `alerts_topic`: one record per (rule, group) the
event counts for — key ``rule/<name>/<group values>`` — and one per policy cluster — key
``policy/<kind>/<resource>/<type>/<code>``. The alert stage is its own consumer group over that
topic: the instance owning a key's partition evaluates that one rule (an `AlertEngine` per rule,
so an event never counts in a window another instance owns) with in-memory windows by default.
With ``redis:`` in the YAML, windows and the fire-once claim live in Redis, so they survive a
rebalance or a restart and an alert is never fired twice by two owners; a firing alert whose
instance stopped or died is adopted by another (`tracectx.alerting.handover`). Each error id is
counted once per window even when its spans are redelivered (windows de-duplicate ids).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from collections.abc import Callable, Hashable, Iterable
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer

from tracectx import semconv as sc
from tracectx.alerting import AlertEngine, ErrorEvent, build_engine, load_config
from tracectx.alerting.config import AlertConfig
from tracectx.kinds import Alerting, KindError, get_kind, policy_for
from tracectx_stream.delivery import Outbox, OutputProducer
from tracectx_stream.settings import StreamSettings
from tracectx_stream.stats import StreamStats
from tracectx_stream.supervise import close_quietly
from tracectx_stream.worker import CLOSE_TIMEOUT_MS

__all__ = ["AlertStage", "event_of"]

_log = logging.getLogger("tracectx.stream")
SEP = "/"


def event_of(record: dict[str, Any]) -> ErrorEvent:
    """The alert engine's view of an error path record (one event per error)."""
    origin = record["origin"]
    names = [n for n in (origin.get("name"), origin.get("service")) if n]
    return ErrorEvent(
        error_id=str(record["error_id"] or record["key"]),
        kind=str(record["kind"] or "UNKNOWN"),
        code=str(record["code"] or ""),
        error_type=str(record["type"] or ""),
        role=sc.ROLE_ORIGIN,
        resources=tuple(names) or ("unknown",),
        trace_id=str(record["trace_id"]),
        span_id=str(origin["span_id"]),
        timestamp=(origin.get("end_ns") or time.time_ns()) / 1e9,
        service=str(origin.get("service", "")),
        metadata=dict(record.get("metadata") or {}),
        message=str(record.get("message") or ""),
    )


def _event_json(event: ErrorEvent) -> dict[str, Any]:
    data = dataclasses.asdict(event)
    data["resources"] = list(event.resources)
    return data


_TEXT_FIELDS = ("error_id", "kind", "code", "error_type", "role", "trace_id", "span_id")
_OPTIONAL_TEXT = ("service", "message", "stack")
MAX_TEXT = 4096  # characters of any one text field of an event read back
MAX_RESOURCES = 16
MAX_METADATA = 64


def _text(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"event field {field} is not a string")
    return value[:MAX_TEXT]


def _event_from(data: Any, role: str | None = None) -> ErrorEvent:
    """The event `_event_json` wrote (with `role` instead of its own, if given), checked field
    by field: the events topic is writable by any client, so a record of another shape raises
    TypeError/KeyError/ValueError here instead of failing a whole batch in the engine."""
    if not isinstance(data, dict):
        raise TypeError("event is not an object")
    fields: dict[str, Any] = {f: _text(data[f], f) for f in _TEXT_FIELDS}
    fields.update({f: _text(data.get(f, ""), f) for f in _OPTIONAL_TEXT})
    resources = data["resources"]
    if not isinstance(resources, list) or not resources or len(resources) > MAX_RESOURCES:
        raise ValueError("event resources must be a non-empty list")
    fields["resources"] = tuple(_text(r, "resources") for r in resources)
    stamp = data["timestamp"]
    if isinstance(stamp, bool) or not isinstance(stamp, int | float) or not math.isfinite(stamp):
        raise ValueError("event timestamp is not a finite number")
    fields["timestamp"] = float(stamp)
    metadata = data.get("metadata") or {}
    if not isinstance(metadata, dict) or len(metadata) > MAX_METADATA:
        raise ValueError("event metadata must be an object of at most 64 entries")
    fields["metadata"] = {
        _text(k, "metadata"): v if isinstance(v, bool | int | float) else _text(v, "metadata")
        for k, v in metadata.items()
        if v is not None
    }
    if role is not None:
        fields["role"] = role
    return ErrorEvent(**fields)


def _policy_alerts(kind_name: str) -> bool:
    try:
        kind = get_kind(kind_name)
    except KindError:
        kind = get_kind("UNKNOWN")
    return policy_for(kind).alerting in (Alerting.ALWAYS, Alerting.IMMEDIATE)


class AlertStage:
    """Routes error paths to their owners (a path handler) and evaluates the owned keys (a
    consumer loop run beside the stream)."""

    def __init__(self, config: AlertConfig, settings: StreamSettings) -> None:
        self.config = config
        self.settings = settings
        self.topic = settings.alerts_topic
        shared = build_engine(config)  # sinks and windows, built once, shared by every engine
        shared.rules = []  # this one evaluates policy clusters only
        self.policy = shared
        self.engines = {
            rule.name: AlertEngine(
                [rule],
                sinks=shared.sinks,
                windows=shared.windows,
                default_actions=shared.default_actions,
                jaeger_template=shared.jaeger_template,
                resend_interval=shared.resend_interval,
                cluster_quiet=shared.cluster_quiet,
                max_groups=config.max_groups_per_rule,
                state_key=config.state_key,  # else TRACECTX_ALERT_STATE_KEY, as `policy`
                policy_alerts=False,  # `policy` evaluates the kind policy
            )
            for rule in config.rules
        }
        self._producer: OutputProducer | None = None
        self._outbox: Outbox | None = None
        self.consumer: KafkaConsumer | None = None
        self._last_tick = time.monotonic()
        self.routed = 0
        self.observed = 0
        self.unreadable = 0  # records on the events topic that are not events (skipped)
        self.failed = 0  # evaluations or ticks that raised (logged; the stage goes on)
        self.stats: StreamStats | None = None  # the instance's, to show `failed` and adoptions

    # -- routing (in the assembling stage) ------------------------------------------------

    def __call__(self, record: dict[str, Any]) -> None:
        if self._outbox is None:
            s = self.settings
            self._producer = OutputProducer(s.producer_config())
            self._outbox = Outbox(self._producer, self.stats)
        event = event_of(record)
        payload = _event_json(event)
        owner = str(record.get("trace_id"))
        for name, engine in self.engines.items():
            rule = engine.rules[0]
            group = rule.group(event.metadata) if rule.accepts(event) is not None else None
            if group is not None:
                value = {"rule": name, "event": payload}
                self._send(SEP.join(("rule", name, *group)), value, owner)
        if _policy_alerts(event.kind):
            key = SEP.join(("policy", event.kind, event.resource, event.error_type, event.code))
            self._send(key, {"rule": None, "event": payload}, owner)

    def _send(self, key: str, value: dict[str, Any], owner: str) -> None:
        assert self._outbox is not None
        data = json.dumps(value, default=str).encode()
        self._outbox.send(self.topic, key.encode(), data, owner)
        self.routed += 1

    def settle(self, beat: Callable[[], None] | None = None) -> set[Hashable]:
        """Wait for the events routed so far to be acknowledged: the traces whose events were
        refused (the stream undoes and re-reads them; windows count each error id once)."""
        if self._outbox is None:
            return set()
        return self._outbox.settle(beat)

    def close_output(self, timeout_s: float = CLOSE_TIMEOUT_MS / 1000) -> None:
        """Routing is over (the stream has stopped): flush the events routed (at most
        `timeout_s`), then close the producer, its threads and connections. Not in
        `close`: the assembling stage may still be routing when this stage stops. A later
        route opens a new producer."""
        producer, self._producer, self._outbox = self._producer, None, None
        if producer is None:
            return
        left = producer.close(timeout_s)
        if left:  # their traces were not committed past: read again by the group
            _log.warning("tracectx stream: %d alert event(s) not flushed at exit", left)

    # -- evaluation (its own consumer group, a supervised stage) --------------------------

    name = "alerts"

    def open(self) -> None:
        s = self.settings
        self.consumer = KafkaConsumer(self.topic, **s.consumer_config(f"{s.group}.alerts"))

    def step(self) -> None:
        consumer = self.consumer
        assert consumer is not None
        batches = consumer.poll(timeout_ms=200)
        for records in batches.values():
            self._observe_all(record.value for record in records)
        if batches:
            consumer.commit()
        if time.monotonic() - self._last_tick >= 1.0:
            self._last_tick = time.monotonic()
            engines = (self.policy, *self.engines.values())
            for engine in engines:
                self._guarded(engine.tick)
            if self.stats is not None:
                self.stats.alerts_adopted = sum(e.adopted for e in engines)
                self.stats.alert_states_refused = sum(e.refused for e in engines)
                self.stats.alert_errors = self.failed + sum(e.errors for e in engines)

    def close(self) -> None:
        """A clean stop: close the consumer, send what is still queued for the sinks, then
        hand the firing alerts over to the other instances (with Redis windows)."""
        self.abandon()
        for sink in self.policy.sinks.values():
            sink.close()
        for engine in (self.policy, *self.engines.values()):
            engine.hand_off()

    def abandon(self) -> None:
        """After a failure: close the consumer without committing (events not committed are
        read again; windows count each error id once)."""
        close_quietly(self.consumer, CLOSE_TIMEOUT_MS)
        self.consumer = None

    def _observe(self, raw: bytes | None) -> None:
        self._observe_all((raw,))

    def _observe_all(self, raws: Iterable[bytes | None]) -> None:
        """Evaluate records in order, each by its engine; a run of records for one engine
        goes to it as one batch (`AlertEngine.observe_many`)."""
        engine: AlertEngine | None = None
        run: list[ErrorEvent] = []
        for raw in raws:
            found = self._decode(raw)
            if found is None:
                continue
            owner, event = found
            if owner is not engine:
                if run:
                    assert engine is not None
                    self._guarded(engine.observe_many, run)
                engine, run = owner, []
            run.append(event)
        if run:
            assert engine is not None
            self._guarded(engine.observe_many, run)

    def _guarded(self, fn: Callable[..., object], *args: Any) -> None:
        """Run `fn`; an error (a bug, a sink that raised) is logged and counted, and the stage
        goes on: one alert must not stop alerting for the instance."""
        try:
            fn(*args)
        except Exception:
            self.failed += 1
            if self.stats is not None:
                self.stats.alert_errors += 1
            _log.exception("tracectx stream: alert evaluation failed")

    def _decode(self, raw: bytes | None) -> tuple[AlertEngine, ErrorEvent] | None:
        """The engine owning a record and its event; None (logged) if it is unreadable."""
        try:
            data = json.loads(raw or b"")
            engine = self.engines.get(data.get("rule") or "")
            # a rule's engine evaluates this rule only: as 'propagated' it adds no policy alert
            role = sc.ROLE_PROPAGATED if engine is not None else None
            event = _event_from(data["event"], role)
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
            self.unreadable += 1
            if self.stats is not None:
                self.stats.poison_records += 1
            _log.warning("tracectx stream: unreadable alert event skipped")
            return None
        self.observed += 1
        return (self.policy if engine is None else engine), event  # policy: clusters only


def alert_handler(path: Path, settings: StreamSettings) -> AlertStage:
    """The alert stage for the YAML file at `path`."""
    return AlertStage(load_config(path), settings)
