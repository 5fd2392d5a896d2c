"""Property tests: whatever document or text an alert file holds, `load_config` returns a config
or raises `AlertConfigError` — no other exception, no hang (each example well under a second)."""

from __future__ import annotations

import math
import tracemalloc
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import Cost
from tracectx.alerting import AlertConfig, AlertConfigError, load_config

BUDGET_S = 1.0
MAX_PEAK_BYTES = 64 * 1024 * 1024
FIELDS = [
    "alert_rules",
    "sinks",
    "default_actions",
    "jaeger",
    "redis",
    "resend_interval",
    "cluster_quiet",
    "name",
    "resource",
    "kinds",
    "window",
    "threshold",
    "group_by",
    "cooldown",
    "actions",
    "error_weights",
    "base_threshold",
    "decay_factor",
    "type",
    "url",
    "headers",
    "ttl",
    "timeout",
    "FATAL",
    "BUSINESS",
    "log",
    "webhook",
    "alertmanager",
]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(FIELDS),
    st.text(max_size=20),
)
keys = st.one_of(
    st.sampled_from(FIELDS), st.text(max_size=10), st.integers(), st.booleans(), st.none()
)
documents = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(keys, inner, max_size=6),
    max_leaves=40,
)
# Fragments of YAML syntax, so random text reaches the scanner's and constructors' corners.
TOKENS = [
    "alert_rules:",
    "sinks:",
    " - ",
    "{",
    "}",
    "[",
    "]",
    ",",
    ": ",
    "\n",
    "  ",
    "? ",
    "&a ",
    "*a",
    "!!int ",
    "!!float ",
    "!!bool ",
    "!!str ",
    "!!binary ",
    "!!timestamp ",
    "!!python/object:os.system ",
    "!x ",
    "---\n",
    "...\n",
    "'",
    '"',
    "#",
    "|\n",
    ">\n",
    "%YAML 1.1\n",
    ".nan",
    ".inf",
    "-.inf",
    "9" * 5000,
    "0x" + "f" * 200,
    "1e999",
    "1.0e+999",
    "2001-13-45",
    "name: x",
    "threshold: 1",
    "\t",
    "\x00",
    "\ufeff",
    "\u202e",
]
yaml_text = st.lists(st.sampled_from(TOKENS) | st.text(max_size=8), max_size=60).map("".join)


def load_within_budget(source: str | bytes) -> None:
    tracemalloc.start()
    cost = Cost()  # CPU time: a loaded CI machine must not fail a fast load (see Cost)
    try:
        result = load_config(source)
        assert isinstance(result, AlertConfig)
    except AlertConfigError as exc:
        assert str(exc).startswith("alert config: ")
    finally:
        cost.stop()
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    cost.assert_within(BUDGET_S)
    assert peak < MAX_PEAK_BYTES, f"peak {peak} bytes"


def dump(document: Any) -> str:
    return yaml.safe_dump(document, allow_unicode=True)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents)
def test_random_documents(document):
    load_within_budget(dump(document))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "alert_rules": st.lists(
                st.dictionaries(st.sampled_from(FIELDS), documents), max_size=4
            ),
            "sinks": st.dictionaries(keys, st.dictionaries(st.sampled_from(FIELDS), scalars)),
            "resend_interval": scalars,
            "default_actions": st.lists(scalars, max_size=3),
        },
    )
)
def test_random_config_shaped_documents(document):
    load_within_budget(dump(document))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(yaml_text)
def test_random_yaml_text(text):
    load_within_budget(text)
    load_within_budget(text.encode("utf-8", "surrogatepass"))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200))
def test_random_bytes(raw):
    load_within_budget(raw)


@settings(max_examples=50, deadline=None)
@given(
    st.sampled_from(["threshold", "window", "cooldown"]),
    st.sampled_from([math.nan, math.inf, -math.inf]),
)
def test_non_finite_numbers_refused_with_their_path(field, value):
    text = dump({"alert_rules": [{"name": "x", "threshold": 1, field: value}]})
    with pytest.raises(AlertConfigError, match=rf"alert_rules\[0\]\.{field}: .* finite number"):
        load_config(text)
