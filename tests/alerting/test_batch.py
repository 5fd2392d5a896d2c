"""`observe_many` evaluates a batch as `observe` would one event at a time, the stream's alert
stage feeds its engines in batches, and what the engine caches per event kind stays bounded."""

from __future__ import annotations

import json
import random

from tests.alerting.rules import sentinel_rule
from tests.alerting.test_engine import event
from tracectx.alerting import AlertEngine, Rule, load_config
from tracectx.alerting.engine import MAX_REMEMBERED
from tracectx.alerting.events import ErrorEvent
from tracectx.alerting.rules import MAX_CACHED


def mixed_events(n: int) -> list[ErrorEvent]:
    """Bursts on a few accounts, duplicates, other resources and kinds, FATAL clusters."""
    rng = random.Random(18)
    found = []
    for i in range(n):
        kind = rng.choice(["BUSINESS", "BUSINESS", "TRANSIENT", "FATAL"])
        eid = f"{rng.randrange(n):06x}"  # some ids repeat: counted once
        found.append(
            event(
                eid,
                kind=kind,
                ts=1000.0 + i * rng.choice([0.1, 1.0, 30.0]),
                resource=rng.choice(["payment", "payment", "refund"]),
                account_id=f"acc_{rng.randrange(8)}",
            )
        )
    return found


def rules_and_sink() -> tuple[list[Rule], list]:
    received: list = []
    rules = [
        sentinel_rule(actions=[received.append], threshold=3, window=60, cooldown=60),
        Rule(
            name="risk",
            resource="pay*",
            error_weights={"FATAL": 8.0, "TRANSIENT": 5.0, "BUSINESS": 1.5},
            base_threshold=10.0,
            decay_factor=0.95,
            group_by=["account_id"],
            actions=[received.append],
        ),
    ]
    return rules, received


def outcome(alerts: list) -> list[tuple]:
    return [(a.key, a.count, a.score, list(a.trace_ids), list(a.error_ids)) for a in alerts]


def test_observe_many_fires_what_observe_fires():
    events = mixed_events(3000)
    one_rules, one_sink = rules_and_sink()
    one = AlertEngine(one_rules, default_actions=[one_sink.append], max_groups=5)
    returned_one = [a for e in events for a in one.observe(e)]
    many_rules, many_sink = rules_and_sink()
    many = AlertEngine(many_rules, default_actions=[many_sink.append], max_groups=5)
    returned_many = [
        a for part in range(0, 3000, 700) for a in many.observe_many(events[part : part + 700])
    ]
    assert returned_one and outcome(returned_many) == outcome(returned_one)
    assert outcome(many_sink) == outcome(one_sink)
    assert many.groups.overflowed == one.groups.overflowed


def test_kinds_from_error_data_are_remembered_within_a_bound():
    rule = sentinel_rule(actions=[lambda a: None])
    engine = AlertEngine([rule])
    for i in range(MAX_REMEMBERED + 50):  # no tick in between: only the bound keeps it small
        engine.observe(event(f"{i}", kind=f"K{i}", ts=100.0, account_id="acc_1"))
    assert len(engine._alerting) <= MAX_REMEMBERED
    for i in range(MAX_CACHED + 50):
        rule.weight(f"W{i}")
    assert len(rule._weights) <= MAX_CACHED


CONFIG = """
default_actions: [log]
alert_rules:
  - {name: burst, resource: payment, kinds: [BUSINESS], threshold: 2, window: 300,
     group_by: [account_id]}
"""


def test_stream_stage_feeds_each_engine_its_records_in_order():
    from tracectx_stream.alerting import AlertStage, _event_json
    from tracectx_stream.settings import StreamSettings

    stage = AlertStage(load_config(CONFIG), StreamSettings(bootstrap_servers="unused:9092"))

    def record(rule: str | None, eid: str, kind: str) -> bytes:
        payload = _event_json(event(eid, kind=kind, ts=100.0, account_id="acc_1"))
        return json.dumps({"rule": rule, "event": payload}).encode()

    stage._observe_all(
        [
            record("burst", "1", "BUSINESS"),
            record(None, "f1", "FATAL"),
            b"not json",
            record("burst", "2", "BUSINESS"),
            record("burst", "3", "BUSINESS"),
            record("burst", "f2", "FATAL"),  # routed to the rule: never a policy alert there
            record(None, "f2", "FATAL"),
        ]
    )
    assert stage.observed == 6
    (burst,) = stage.engines["burst"].firing
    assert burst.count == 3 and sorted(burst.error_ids) == ["1", "2", "3"]
    (fatal,) = stage.policy.firing
    assert fatal.policy and fatal.kind == "FATAL" and fatal.count == 2


def test_stream_stage_goes_on_after_an_evaluation_fails():
    from tracectx_stream.alerting import AlertStage, _event_json
    from tracectx_stream.settings import StreamSettings
    from tracectx_stream.stats import StreamStats

    stage = AlertStage(load_config(CONFIG), StreamSettings(bootstrap_servers="unused:9092"))
    stage.stats = StreamStats()
    engine = stage.engines["burst"]
    real, calls = engine.observe_many, []

    def fails_once(events):  # a bug or a sink that raised, once
        calls.append(len(events))
        if len(calls) == 1:
            raise RuntimeError("boom")
        return real(events)

    engine.observe_many = fails_once  # type: ignore[method-assign]

    def record(rule: str | None, eid: str, kind: str) -> bytes:
        payload = _event_json(event(eid, kind=kind, ts=100.0, account_id="acc_1"))
        return json.dumps({"rule": rule, "event": payload}).encode()

    stage._observe_all([record("burst", "1", "BUSINESS"), record(None, "f1", "FATAL")])
    stage._observe_all([record("burst", f"{i}", "BUSINESS") for i in range(2, 6)])
    assert stage.failed == 1  # logged and counted, not raised: the stage thread lives on
    assert stage.stats.as_dict()["alert_errors"] == 1  # what GET /stats shows
    assert stage.policy.firing and stage.engines["burst"].firing
