"""Alerts reach a real Alertmanager: the Sentinel example (also across 3 processes sharing a
real Redis), resolution after the window, and an Alertmanager that goes away and comes back."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
import uuid

import pytest

from tests.alerting.conftest import raise_on
from tests.alerting.rules import sentinel_rule
from tracectx.alerting import (
    AlertEngine,
    AlertmanagerSink,
    ErrorStreamProcessor,
    RedisWindows,
)
from tracectx.testing import plugged
from tracectx_demo.embedded import redis_server

pytestmark = pytest.mark.integration


def of_account(account: str):
    return lambda a: a["labels"].get("account_id") == account


def test_sentinel_example_fires_one_alert(am):
    sink = AlertmanagerSink(am.url)
    engine = AlertEngine(
        [sentinel_rule()],
        sinks={"am": sink},
        jaeger_template="http://jaeger:16686/trace/{trace_id}",
    )
    with plugged(ErrorStreamProcessor([engine.observe])):
        for _ in range(10):
            raise_on("payment", account_id="acc_456")
        for _ in range(11):
            raise_on("payment", account_id="acc_123")
    assert sink.dispatcher.flush(10)
    (alert,) = am.wait_for(of_account("acc_123"))
    assert alert["labels"]["alertname"] == "payment-business-burst"
    assert alert["labels"]["kind"] == "BUSINESS" and alert["status"]["state"] == "active"
    notes = alert["annotations"]
    trace_ids = notes["trace_ids"].split(",")
    assert len(trace_ids) == 5 and all(len(t) == 32 for t in trace_ids)
    assert notes["jaeger"] == f"http://jaeger:16686/trace/{trace_ids[-1]}"
    assert notes["count"] == "11" and len(notes["error_id"]) == 16
    assert alert["generatorURL"] == notes["jaeger"]
    assert [a for a in am.alerts() if of_account("acc_456")(a)] == []
    engine.close()


def test_resolved_after_the_window(am):
    sink = AlertmanagerSink(am.url)
    engine = AlertEngine([sentinel_rule(window=2, cooldown=0)], sinks={"am": sink})
    with plugged(ErrorStreamProcessor([engine.observe])):
        for _ in range(11):
            raise_on("payment", account_id="acc_123")
    inside = time.time()  # the errors' window ends 2 s after this, at the earliest
    sink.dispatcher.flush(10)
    assert am.wait_for(of_account("acc_123"))
    # still inside the window: at `inside`, as reaching Alertmanager may take longer than 2 s
    # on a loaded machine
    assert engine.tick(now=inside) == []
    time.sleep(max(inside + 2.1 - time.time(), 0))
    (resolved,) = engine.tick()
    assert resolved.group == {"account_id": "acc_123"}
    sink.dispatcher.flush(10)
    deadline = time.monotonic() + 30
    while am.alerts() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert am.alerts() == []
    engine.close()


def test_three_processes_share_windows_in_redis(am, redis):
    url = f"redis://{redis.address}/{1 + uuid.uuid4().int % 14}"
    account = f"acc_{uuid.uuid4().hex[:6]}"

    def run(acct: str, counts: tuple[int, ...]) -> list[int]:
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.integration.alerting.emitter",
                    url,
                    am.url,
                    acct,
                    str(n),
                ],
                stdout=subprocess.PIPE,
                text=True,
            )
            for n in counts
        ]
        return [int(p.communicate(timeout=60)[0].split()[-1]) for p in procs]

    assert sum(run(account, (4, 4, 3))) == 1  # exactly one process fired
    assert len(am.wait_for(of_account(account))) == 1
    below = f"{account}_b"
    assert sum(run(below, (4, 3, 3))) == 0
    time.sleep(1)
    assert [a for a in am.alerts() if of_account(below)(a)] == []


def test_alertmanager_down_then_back_never_blocks(am):
    sink = AlertmanagerSink(am.url)
    engine = AlertEngine([sentinel_rule()], sinks={"am": sink}, resend_interval=0.5)
    am.service.stop()
    start = time.monotonic()
    with plugged(ErrorStreamProcessor([engine.observe])):
        for _ in range(11):
            raise_on("payment", account_id="acc_123")
    assert time.monotonic() - start < 2.0  # delivery is off the app's path
    time.sleep(1.0)
    am.service.start()
    deadline = time.monotonic() + 20
    found = []
    while not found and time.monotonic() < deadline:
        engine.tick()  # re-sends the firing alert
        found = am.wait_for(of_account("acc_123"), timeout=0.5)
    assert len(found) == 1
    assert sink.dispatcher.delivered >= 1
    engine.close()


def test_redis_down_falls_back_to_local_windows_and_says_so_once(caplog):
    service = redis_server().start()
    windows = RedisWindows(f"redis://{service.address}/0", timeout=0.2)
    received: list = []
    engine = AlertEngine([sentinel_rule(actions=[received.append])], windows=windows)
    service.stop()
    caplog.set_level(logging.WARNING, logger="tracectx.alerting")
    with plugged(ErrorStreamProcessor([engine.observe])):
        for _ in range(11):
            raise_on("payment", account_id="acc_123")
    assert len(received) == 1 and windows.degraded
    warnings = [r for r in caplog.records if "Redis unavailable" in r.getMessage()]
    assert len(warnings) == 1


def test_alertmanager_gets_bounded_redacted_labels(am):
    sink = AlertmanagerSink(am.url)
    rule = sentinel_rule(group_by=["account_id", "api_key"], threshold=0)
    engine = AlertEngine([rule], sinks={"am": sink})
    account = "acc_" + "9" * 50_000  # inbound text: a huge group value
    with plugged(ErrorStreamProcessor([engine.observe])):
        raise_on("payment", account_id=account, api_key="sk_live_secret")
    assert sink.dispatcher.flush(10) and sink.dispatcher.delivered == 1
    (alert,) = am.wait_for(lambda a: a["labels"].get("alertname") == "payment-business-burst")
    labels = alert["labels"]
    assert labels["api_key"] == "[REDACTED]"
    assert labels["account_id"].startswith("acc_999") and len(labels["account_id"]) <= 256
    assert "sk_live_secret" not in str(alert)
    engine.close()
