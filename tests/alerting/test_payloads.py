"""What leaves the process in an alert: sensitive group values masked in every output, text from
errors bounded, and log lines that control characters cannot forge."""

from __future__ import annotations

import json
import logging

from tests.alerting.rules import sentinel_rule
from tests.alerting.test_engine import event
from tracectx.alerting import AlertEngine, LogSink
from tracectx.alerting.alerts import MAX_LABEL_VALUE
from tracectx.alerting.events import ErrorEvent

CARD = "4111111111111111"


def fire(rule_fields: dict, **metadata: str) -> list:
    received: list = []
    rule = sentinel_rule(actions=[received.append], threshold=0, **rule_fields)
    AlertEngine([rule]).observe(event("e1", ts=100.0, **metadata))
    return received


def everything_sent(alert) -> str:
    return json.dumps([alert.to_dict(), alert.to_alertmanager(100.0, 300.0)])


def test_sensitive_group_values_never_leave_in_any_output():
    (alert,) = fire({"group_by": ["card_number", "account_id"]}, card_number=CARD, account_id="a1")
    assert alert.labels()["card_number"] == "[REDACTED]"
    assert alert.labels()["account_id"] == "a1"
    assert alert.to_dict()["group"] == {"card_number": "[REDACTED]", "account_id": "a1"}
    assert CARD not in everything_sent(alert)  # the key used to carry it raw
    assert alert.to_dict()["key"].startswith("payment-business-burst:")


def test_the_public_key_is_stable_and_tells_groups_apart():
    (one,) = fire({}, account_id="acc_1")
    (again,) = fire({}, account_id="acc_1")
    (other,) = fire({}, account_id="acc_2")
    assert one.to_dict()["key"] == again.to_dict()["key"] != other.to_dict()["key"]


def test_label_values_from_inbound_text_are_bounded():
    huge = "x" * 100_000
    (first,) = fire({}, account_id=huge + "1")
    (second,) = fire({}, account_id=huge + "2")
    labels = first.labels()
    assert all(len(v) <= MAX_LABEL_VALUE for v in labels.values())
    assert labels["account_id"] != second.labels()["account_id"]  # still two groups
    assert len(first.key) < 300  # the window key (memory, Redis) is bounded too
    body = first.to_alertmanager(100.0, 300.0)
    assert len(json.dumps(body)) < 4096


def test_long_resource_error_type_and_code_are_bounded():
    received: list = []
    long = "r" * 10_000
    AlertEngine(default_actions=[received.append]).observe(
        ErrorEvent(
            error_id="e1",
            kind="FATAL",
            code="C" * 10_000,
            error_type="T" * 10_000,
            role="origin",
            resources=(long,),
            trace_id="a" * 32,
            span_id="b" * 16,
            timestamp=100.0,
            service="s" * 10_000,
        )
    )
    (alert,) = received
    assert all(len(v) <= MAX_LABEL_VALUE for v in alert.labels().values())
    notes = alert.annotations()
    assert len(notes["summary"]) < 400 and len(notes["code"]) <= MAX_LABEL_VALUE


def test_log_sink_escapes_control_characters_and_redacts(caplog):
    forged = "payment\n2024-01-01 CRITICAL all good\x1b[2J\u202e"
    received: list = []
    rule = sentinel_rule(
        resource="*", group_by=["account_id", "password"], threshold=0, actions=["log"]
    )
    engine = AlertEngine([rule], sinks={"log": LogSink()}, default_actions=[received.append])
    caplog.set_level(logging.INFO, logger="tracectx.alerts")
    engine.observe(event("e1", ts=100.0, resource=forged, account_id="a\r\nb", password="hunter2"))
    (record,) = [r for r in caplog.records if r.name == "tracectx.alerts"]
    line = record.getMessage()
    assert "\n" not in line and "\x1b" not in line and "\u202e" not in line
    assert "payment\\n2024-01-01 CRITICAL all good\\x1b[2J\\u202e" in line
    shown = json.dumps(record.alert, ensure_ascii=False)  # the structured field
    assert "hunter2" not in shown and "\x1b" not in shown and "\r" not in shown
    assert record.alert["labels"]["account_id"] == "a\\r\\nb"
