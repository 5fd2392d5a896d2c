"""Window memory: expired windows are dropped, memory follows the groups active within a window,
and a flood of distinct group values is capped per rule, counted and logged."""

from __future__ import annotations

import gc
import logging
import tracemalloc

import pytest

from tests.alerting.rules import sentinel_rule
from tests.alerting.test_engine import event
from tracectx.alerting import AlertEngine, Rule
from tracectx.alerting.groups import OVERFLOW_COUNTER
from tracectx.alerting.windows import MemoryWindows
from tracectx.testing import install_test_meter_provider

KEYS = 20_000


def weighted_rule(**overrides) -> Rule:
    fields = dict(
        name="risk",
        resource="payment",
        error_weights={"BUSINESS": 1.5},
        base_threshold=10.0,
        decay_factor=0.95,
        group_by=["account_id"],
        actions=[lambda alert: None],
    )
    fields.update(overrides)
    return Rule(**fields)


def flood(engine: AlertEngine, keys: int, ts: float, prefix: str = "acc") -> None:
    """One error each for `keys` distinct accounts (the cardinality-attack shape)."""
    for i in range(keys):
        engine.observe(event(f"{prefix}{i:012x}", ts=ts, account_id=f"{prefix}_{i}"))


def test_expired_windows_are_dropped_and_their_memory_given_back():
    windows = MemoryWindows()
    engine = AlertEngine(
        [sentinel_rule(actions=[lambda a: None]), weighted_rule()], windows=windows
    )
    tracemalloc.start()
    try:
        # warm up lazily built caches, and fill the engine's bounded memory of recent error
        # ids and samples (10k each): what stays after a flood
        flood(engine, KEYS, ts=0.0, prefix="warm")
        engine.tick(3600.0)
        gc.collect()
        base = tracemalloc.get_traced_memory()[0]
        flood(engine, KEYS, ts=10_000.0)
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - base
        assert windows.held == 2 * KEYS  # a count and a score window per account
        engine.tick(10_000.0 + 3600)  # every window expired an hour ago
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    assert windows.held == 0
    assert engine.groups.active("payment-business-burst") == engine.groups.active("risk") == 0
    # Nothing of the 2 x 20k windows stays (before: all of it, ~2.5 KB per account).
    assert kept < grown / 10, (grown, kept)


def test_windows_expire_without_any_new_error():
    windows = MemoryWindows()
    assert windows.add("k", "a", 0.0, 10.0) == 1
    assert windows.add_score("s", "a", 0.0, 2.0, 1.0, 60.0) == 2.0
    assert windows.claim("c", 0.001)
    windows.expire(9.0)
    assert windows.held == 2 and windows.count("k", 9.0, 10.0) == 1
    windows.expire(10.0)  # the count window's newest error left it
    assert windows.held == 1 and windows.count("k", 10.0, 10.0) == 0
    assert windows.score("s", 59.0, 1.0) == 2.0
    windows.expire(60.0)  # a score is forgotten `ttl` seconds after its last add
    assert windows.held == 0 and windows.score("s", 60.0, 1.0) == 0.0


def test_a_window_kept_busy_is_kept():
    windows = MemoryWindows()
    for i in range(100):
        assert windows.add("k", f"e{i}", float(i), 10.0) == min(i + 1, 10)
    windows.expire(99.0)
    assert windows.held == 1 and windows.count("k", 99.0, 10.0) == 10


def test_score_forgets_ids_older_than_its_ttl_like_redis():
    windows = MemoryWindows()
    assert windows.add_score("s", "a", 0.0, 1.0, 1.0, 60.0) == 1.0
    assert windows.add_score("s", "b", 50.0, 1.0, 1.0, 60.0) == 2.0
    assert windows.add_score("s", "a", 50.0, 1.0, 1.0, 60.0) is None  # still remembered
    assert windows.add_score("s", "a", 100.0, 1.0, 1.0, 60.0) == 3.0  # 100 s later: counted


@pytest.fixture(scope="module")
def reader():
    return install_test_meter_provider()


def overflow_points(reader) -> dict[str, int]:
    data = reader.get_metrics_data()
    found: dict[str, int] = {}
    for rm in data.resource_metrics if data else []:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                if metric.name == OVERFLOW_COUNTER:
                    for point in metric.data.data_points:
                        found[point.attributes["alert.rule"]] = point.value
    return found


def test_groups_per_rule_are_capped_counted_and_logged_once(reader, caplog):
    received: list = []
    rule = sentinel_rule(name="capped-burst", actions=[received.append], threshold=0)
    engine = AlertEngine([rule], max_groups=100)
    before = overflow_points(reader).get("capped-burst", 0)
    caplog.set_level(logging.WARNING, logger="tracectx.alerting")
    flood(engine, 150, ts=1000.0)
    assert len(received) == 100  # threshold 0: each admitted account alerts at once
    assert engine.groups.active("capped-burst") == 100
    assert overflow_points(reader)["capped-burst"] - before == 50
    warnings = [r for r in caplog.records if "tracks 100 groups" in r.getMessage()]
    assert len(warnings) == 1  # rate-limited: one per rule per minute
    # a group already tracked keeps counting while the rule is full
    engine.observe(event("again", ts=1001.0, account_id="acc_7"))
    assert received[7].count == 2
    # once the windows are over, new groups are admitted again
    assert len(engine.tick(1000.0 + 301)) == 100  # resolved
    flood(engine, 10, ts=2000.0, prefix="new")
    assert len(received) == 100 + 100 + 10  # 100 resolved, then 10 new firing


def test_policy_clusters_are_capped_too():
    received: list = []
    engine = AlertEngine(default_actions=[received.append], max_groups=3)
    for i in range(10):
        engine.observe(event(f"{i}", kind="FATAL", ts=100.0, resource=f"route-{i}"))
    assert len(received) == 3


def test_max_groups_must_be_positive():
    with pytest.raises(ValueError, match="max_groups must be >= 1"):
        AlertEngine(max_groups=0)
