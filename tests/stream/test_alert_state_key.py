"""The stream's alert stage gives every engine (the policy one and one per rule) the alert
YAML's hand-over key, and /stats counts the states they refused."""

from __future__ import annotations

from tracectx.alerting import load_config
from tracectx_stream.alerting import AlertStage
from tracectx_stream.settings import StreamSettings
from tracectx_stream.stats import COUNTERS, StreamStats

YAML = """
state_key: a key of sixteen bytes or more
alert_rules:
  - {name: burst, threshold: 3, window: 60}
  - {name: other, threshold: 5, window: 60}
"""


def test_every_engine_of_the_stage_has_the_yamls_key():
    stage = AlertStage(load_config(YAML), StreamSettings(bootstrap_servers="127.0.0.1:9"))
    engines = [stage.policy, *stage.engines.values()]
    assert len(engines) == 3
    assert {e._state_key for e in engines} == {b"a key of sixteen bytes or more"}


def test_refused_states_are_a_stream_counter():
    assert "alert_states_refused" in COUNTERS
    assert StreamStats().as_dict()["alert_states_refused"] == 0
