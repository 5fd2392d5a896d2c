"""An alert carries the trace and error ids of the last errors before its crossing; they are
kept per group only once its window nears the threshold, so one-off groups keep none."""

from __future__ import annotations

from tests.alerting.rules import sentinel_rule
from tests.alerting.test_engine import event
from tests.alerting.test_windows import flood, weighted_rule
from tracectx.alerting import AlertEngine


def test_one_off_groups_keep_no_samples():
    engine = AlertEngine([sentinel_rule(actions=[lambda a: None]), weighted_rule()])
    flood(engine, 2000, ts=100.0)
    assert len(engine._samples) == 0  # was: one list per group, up to 10k groups


def test_alerts_carry_the_last_errors_before_the_crossing():
    fired: list = []

    def send(alert) -> None:  # the ids as sent when it fired
        fired.append((alert.name, set(alert.error_ids)))

    engine = AlertEngine(
        [
            sentinel_rule(actions=[send]),  # more than 10
            weighted_rule(actions=[send]),  # 1.5 each: above 10.0 at the 7th
        ]
    )
    for i in range(11):
        engine.observe(event(f"e{i}", ts=100.0 + i, account_id="acc_1"))
    assert fired == [
        ("risk", {f"e{i}" for i in range(2, 7)}),
        ("payment-business-burst", {f"e{i}" for i in range(6, 11)}),
    ]
