"""Alert files: the documented YAML loads; invalid and hostile files are refused clearly."""

from __future__ import annotations

from pathlib import Path

import pytest

from tracectx.alerting import (
    AlertConfigError,
    AlertmanagerSink,
    WebhookSink,
    build_engine,
    load_config,
)

VALID = """
sinks:
  sms: {type: webhook, url: "http://127.0.0.1:9/sms", headers: {Authorization: "Bearer x"}}
  am: {type: alertmanager, url: "http://127.0.0.1:9093", ttl: 120}
default_actions: [log, am]
jaeger: "http://localhost:16686"
alert_rules:
  - name: payment-business-burst
    resource: payment
    kinds: [BUSINESS]
    threshold: 10
    window: 300
    group_by: [account_id]
    cooldown: 300
    actions: [sms]
  - name: "high-risk-error-burst"
    error_weights:
      FATAL: 8.0
      TRANSIENT: 5.0
      BUSINESS: 1.5
    base_threshold: 10.0
    decay_factor: 0.95 # per-minute decay
"""


def test_documented_file_loads_and_builds(tmp_path: Path):
    path = tmp_path / "alerts.yaml"
    path.write_text(VALID)
    config = load_config(path)
    count, weighted = config.rules
    assert (count.resource, count.threshold, count.window, count.group_by, count.actions) == (
        "payment",
        10,
        300,
        ("account_id",),
        ("sms",),
    )
    assert weighted.error_weights == {"FATAL": 8.0, "TRANSIENT": 5.0, "BUSINESS": 1.5}
    engine = build_engine(config)
    try:
        assert isinstance(engine.sinks["sms"], WebhookSink)
        assert isinstance(engine.sinks["am"], AlertmanagerSink) and engine.sinks["am"].ttl == 120
        assert engine.jaeger_template == "http://localhost:16686/trace/{trace_id}"
        assert engine.default_actions == ("log", "am")
    finally:
        engine.close()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "alert_rules: [{name: x, threshold: ten}]",
            r"alert_rules\[0\]\.threshold: 'ten' is not of type 'number'",
        ),
        (
            "alert_rules: [{name: x}]",
            r"alert_rules\[0\]: .* is not valid under any of the given schemas",
        ),
        ("alert_rules: [{name: x, threshold: 1, colour: red}]", r"'colour' was unexpected"),
        ("alert_rules: [{name: x, threshold: 1, kinds: [NOPE]}]", "unknown error kind 'NOPE'"),
        (
            "alert_rules: [{name: x, threshold: 1, actions: [pager]}]",
            r"undefined sinks \['pager'\]",
        ),
        ("sinks: {am: {type: alertmanager}}", "'url' is a required property"),
        ("sinks: {am: {type: webhook, url: 'file:///etc/passwd'}}", "does not match"),
        ("alert_rules: [{name: x, threshold: 1}", "invalid YAML at line 1"),
        ("- just\n- a list", "is not of type 'object'"),
    ],
)
def test_invalid_files_say_where_and_why(text, message):
    with pytest.raises(AlertConfigError, match=message):
        load_config(text)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("a: &a [1, 2]\nb: [*a, *a, *a]", "aliases are not allowed"),  # billion-laughs shape
        (b"alert_rules: [{name: \xff\xfe, threshold: 1}]", "not UTF-8"),
        ("x" * (1024 * 1024 + 1), "more than"),
        ("!!python/object/apply:os.system ['true']", "invalid YAML"),
        ("alert_rules: " + "[" * 5000 + "]" * 5000, "invalid YAML|is not of type|nest"),
    ],
)
def test_hostile_files_refused(source, message):
    with pytest.raises(AlertConfigError, match=message):
        load_config(source)


def test_empty_file_is_no_rules():
    assert load_config("").rules == []
