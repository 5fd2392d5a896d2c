"""Rules, weighted thresholds, policy alerts and clustering, on errors from real spans."""

from __future__ import annotations

import contextlib
import dataclasses
import time

import pytest

from tests.alerting.conftest import raise_on
from tests.alerting.rules import sentinel_rule
from tracectx import ErrorKind, bound, new_error, register_kind, traced
from tracectx.alerting import Rule, RuleError
from tracectx.alerting.events import ErrorEvent
from tracectx.alerting.windows import MemoryWindows


class TestSentinelExample:
    def test_fires_once_for_acc_123_and_never_below_threshold(self, engine, received):
        engine.add_rule(sentinel_rule(actions=[received.append]))
        for _ in range(10):
            raise_on("payment", account_id="acc_456")
        for _ in range(10):
            raise_on("payment", account_id="acc_123")
        assert received == []
        raise_on("payment", account_id="acc_123")  # the 11th
        raise_on("payment", account_id="acc_123")  # the 12th: same alert, no new one
        (alert,) = received
        assert alert.name == "payment-business-burst"
        assert alert.group == {"account_id": "acc_123"}
        assert alert.count == 12 and alert.kind == "BUSINESS" and alert.code == "E42"
        notes = alert.annotations()
        assert len(notes["error_id"]) == 16 and len(alert.trace_ids) == 5
        assert notes["jaeger"] == f"http://localhost:16686/trace/{alert.trace_ids[-1]}"
        assert alert.labels()["account_id"] == "acc_123"

    def test_other_resources_and_kinds_do_not_count(self, engine, received):
        engine.add_rule(sentinel_rule(actions=[received.append]))
        for _ in range(11):
            raise_on("refund", account_id="acc_123")
            raise_on("payment", ErrorKind.TRANSIENT, account_id="acc_123")
        assert received == []

    def test_an_error_crossing_many_spans_counts_once(self, engine, received):
        engine.add_rule(sentinel_rule(actions=[received.append], resource="POST /pay*"))
        for _ in range(11):
            with contextlib.suppress(Exception), traced("POST /pay"), traced("charge"):
                raise_on_inner()
        assert len(received) == 1 and received[0].count == 11

    def test_resolves_after_the_window(self, received):
        now = [1000.0]
        from tracectx.alerting import AlertEngine

        engine = AlertEngine(
            [sentinel_rule(actions=[received.append], window=60)], clock=lambda: now[0]
        )
        for i in range(11):
            engine.observe(event(f"{i:016x}", ts=now[0], account_id="acc_123"))
        assert len(received) == 1
        assert engine.tick(now[0] + 30) == []
        (resolved,) = engine.tick(now[0] + 61)
        assert resolved.resolved_at == now[0] + 61 and received[-1] is resolved
        assert engine.firing == []


def raise_on_inner() -> None:
    from tracectx import new_error

    with bound(account_id="acc_9"):
        raise new_error(ErrorKind.BUSINESS, "declined")


def event(
    eid: str,
    *,
    kind: str = "BUSINESS",
    ts: float | None = None,
    resource: str = "payment",
    role: str = "origin",
    **metadata: str,
) -> ErrorEvent:
    return ErrorEvent(
        error_id=eid,
        kind=kind,
        code="c",
        error_type="T",
        role=role,
        resources=(resource,),
        trace_id="a" * 32,
        span_id="b" * 16,
        timestamp=ts if ts is not None else time.time(),
        metadata=metadata,
    )


class TestWeighted:
    def rule(self, received) -> Rule:
        return Rule(
            name="high-risk-error-burst",
            resource="*",
            error_weights={"FATAL": 8.0, "TRANSIENT": 5.0, "BUSINESS": 1.5},
            base_threshold=10.0,
            decay_factor=0.95,
            actions=[received.append],
        )

    def test_weighted_score_crosses_base_threshold(self, received):
        from tracectx.alerting import AlertEngine

        engine = AlertEngine([self.rule(received)])
        engine.observe(event("1", kind="TRANSIENT", ts=0))
        engine.observe(event("2", kind="TRANSIENT", ts=0))  # 10.0: not above
        assert received == []
        engine.observe(event("3", kind="BUSINESS", ts=0))  # 11.5
        assert len(received) == 1 and received[0].score == pytest.approx(11.5)

    def test_decay_per_minute(self, received):
        from tracectx.alerting import AlertEngine

        # cooldown 3600: the score outlives 10 idle minutes (it is kept max(window, cooldown,
        # 600 s) after its last add, in memory as in Redis)
        engine = AlertEngine([dataclasses.replace(self.rule(received), cooldown=3600)])
        engine.observe(event("1", kind="FATAL", ts=0))
        engine.observe(event("2", kind="TRANSIENT", ts=600))  # 8 * 0.95**10 + 5 = 9.79
        assert received == []
        engine.observe(event("3", kind="BUSINESS", ts=600))
        assert received[0].score == pytest.approx(8 * 0.95**10 + 6.5)

    def test_custom_kind_alerts_with_its_base_severity(self, received):
        from tracectx.alerting import AlertEngine

        register_kind("DB_CONNECTION_LOST", 3001, base=ErrorKind.FATAL)
        engine = AlertEngine([self.rule(received)])
        engine.observe(event("1", kind="DB_CONNECTION_LOST", ts=0))
        engine.observe(event("2", kind="DB_CONNECTION_LOST", ts=0))
        assert received[0].labels()["severity"] == "critical"

    def test_custom_kind_uses_its_base_weight(self, received):
        from tracectx.alerting import AlertEngine

        register_kind("DB_CONNECTION_LOST", 3001, base=ErrorKind.FATAL)
        engine = AlertEngine([self.rule(received)])
        engine.observe(event("1", kind="DB_CONNECTION_LOST", ts=0))
        engine.observe(event("2", kind="DB_CONNECTION_LOST", ts=0))
        assert received and received[0].score == pytest.approx(16.0)


class TestPolicy:
    def test_fatal_and_unknown_alert_at_once_clustered(self, engine, received):
        for _ in range(3):
            raise_on("db", ErrorKind.FATAL)
        with contextlib.suppress(Exception), traced("parse"):
            raise ValueError("bad")
        fatal = [a for a in received if a.kind == "FATAL"]
        unknown = [a for a in received if a.kind == "UNKNOWN"]
        assert len(fatal) == 1 and fatal[0].count == 3 and fatal[0].resource == "db"
        assert fatal[0].labels()["error_type"] == "tracectx.errors.TracedError"
        assert fatal[0].stack == ""
        assert len(unknown) == 1 and "ValueError" in unknown[0].stack  # full stack for UNKNOWN

    def test_fatal_codes_on_one_route_are_separate_alerts(self, engine, received):
        def fatal(code: str) -> None:
            with contextlib.suppress(Exception), traced("POST /render"):
                raise new_error(ErrorKind.FATAL, "cannot render", code=code)

        fatal("E_DISK")
        fatal("E_TEMPLATES")  # another cause on the same route: its own alert
        fatal("E_DISK")  # the E_DISK cluster again: no new alert
        assert [(a.code, a.count) for a in received] == [("E_DISK", 2), ("E_TEMPLATES", 1)]
        disk, templates = (a.labels() for a in received)
        assert (disk["code"], templates["code"]) == ("E_DISK", "E_TEMPLATES")
        assert disk != templates  # Alertmanager identifies alerts by their labels

    def test_business_and_transient_need_a_rule(self, engine, received):
        raise_on("payment", ErrorKind.BUSINESS)
        raise_on("payment", ErrorKind.TRANSIENT)
        assert received == []

    def test_cluster_resolves_when_quiet_then_fires_again(self, received):
        from tracectx.alerting import AlertEngine

        engine = AlertEngine(default_actions=[received.append], cluster_quiet=10)
        engine.observe(event("1", kind="FATAL", ts=100))
        assert len(received) == 1
        assert engine.tick(105) == [] and len(engine.tick(111)) == 1
        engine.observe(event("2", kind="FATAL", ts=200))
        assert [a.resolved_at is None for a in received] == [False, False, True]

    def test_cluster_window_is_shared_by_processes(self, received):
        from tracectx.alerting import AlertEngine

        shared = MemoryWindows()  # what RedisWindows gives processes sharing one Redis
        first = AlertEngine(default_actions=[received.append], windows=shared, cluster_quiet=10)
        second = AlertEngine(default_actions=[received.append], windows=shared, cluster_quiet=10)
        first.observe(event("1", kind="FATAL", ts=100))
        second.observe(event("2", kind="FATAL", ts=108))  # same cluster: no second alert
        assert len(received) == 1
        assert first.tick(112) == []  # quiet for the first process, not for the cluster
        assert len(first.tick(119)) == 1


class TestRules:
    @pytest.mark.parametrize(
        "fields",
        [
            {"name": "x"},  # neither threshold nor weights
            {"name": "x", "threshold": 1, "error_weights": {"FATAL": 1}, "base_threshold": 1},
            {"name": "x", "error_weights": {"FATAL": 1}},
            {"name": "x", "threshold": 1, "kinds": ["NOPE"]},
            {"name": "x", "threshold": 1, "window": 0},
            {"name": "x", "error_weights": {"FATAL": 1}, "base_threshold": 1, "decay_factor": 1.5},
        ],
    )
    def test_bad_rules_say_why(self, fields):
        with pytest.raises(RuleError, match=r"rule 'x'|name"):
            Rule(**fields)

    def test_missing_group_value_is_not_counted_in_an_empty_group(self, received):
        from tracectx.alerting import AlertEngine

        engine = AlertEngine([sentinel_rule(actions=[received.append], threshold=0)])
        engine.observe(event("1"))
        assert received == []


def test_memory_windows_count_ids_once_and_expire():
    windows = MemoryWindows()
    assert windows.add("k", "a", 0, 10) == 1
    assert windows.add("k", "a", 1, 10) is None
    assert windows.add("k", "b", 5, 10) == 2
    assert windows.count("k", 12, 10) == 1
    assert windows.claim("c", 60) and not windows.claim("c", 60)


def test_install_runs_the_engine_off_the_span_thread(received):
    from opentelemetry.sdk.trace import TracerProvider

    from tracectx import new_error
    from tracectx.alerting import AlertEngine, install

    provider = TracerProvider()
    engine = AlertEngine([sentinel_rule(actions=[received.append], threshold=2)])
    install(engine, provider=provider, metrics=False)
    tracer = provider.get_tracer("t")
    try:
        for _ in range(3):
            with contextlib.suppress(Exception), traced("payment", tracer=tracer):
                raise new_error(ErrorKind.BUSINESS, "no", account_id="acc_1")
        assert engine.drain(5)
        assert len(received) == 1 and received[0].count == 3
    finally:
        engine.close()


def test_a_sink_that_raises_does_not_stop_the_other_actions():
    from tracectx.alerting import AlertEngine

    received: list = []

    class Broken:
        def send(self, alert) -> None:
            raise OSError("the receiver is gone")

        def close(self) -> None:
            pass

    engine = AlertEngine(
        [sentinel_rule(actions=["broken", received.append], threshold=2)],
        sinks={"broken": Broken()},
    )
    for i in range(3):
        engine.observe(event(f"{i:016x}", ts=1000.0, account_id="acc_1"))  # raises nothing
    assert len(received) == 1 and engine.errors == 1
