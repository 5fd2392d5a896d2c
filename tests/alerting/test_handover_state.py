"""Hand-over states read back from Redis (any client may write there): with a key only tagged
states are read, and whatever is read, the adopter's alert says only what its rule says."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from tests.alerting.rules import sentinel_rule
from tests.fuzz.bounds import BUDGET, bounded
from tracectx.alerting import Alert
from tracectx.alerting.handover import (
    STATE_KEY_ENV,
    decode_state,
    encode_state,
    rebuild,
    state_key,
)

KEY = b"0123456789abcdef-key"
RULE = sentinel_rule()
NOW = 2_000_000_000.0
HEX = re.compile(r"[0-9a-f]{1,32}")

text = st.text(max_size=40) | st.sampled_from(["BUSINESS", "FATAL", "acc_1", "a" * 32, ""])
ids = st.lists(text | st.sampled_from(["00ab", "f" * 32]), max_size=8)
valid = st.integers(0, 10**6) | st.floats(0, 4e9)
number = valid | valid | st.integers(-5, 2**60) | st.floats() | st.none()
alert_fields = st.fixed_dictionaries(
    {
        "key": st.just("payment-business-burst\x1facc_1") | text,
        "name": text,
        "kind": st.just("BUSINESS") | text,
        "resource": text,
        "error_type": text,
        "code": text,
        "service": text,
        "reason": text,
        "stack": text,
        "group": st.just({"account_id": "acc_1"})
        | st.dictionaries(st.sampled_from(["account_id", "team"]) | text, text, max_size=3),
        "started_at": number,
        "count": number,
        "score": number,
        "keep_stack": st.booleans() | st.none(),
        "policy": st.booleans() | st.none(),
        "trace_ids": ids,
        "error_ids": ids,
        "error_types": ids,
    }
)
shaped = st.builds(
    lambda rule, fields: json.dumps({"rule": rule, "alert": fields}),
    st.sampled_from([RULE.name, None]) | text,
    alert_fields,
)
states = shaped | shaped | shaped | st.text(max_size=200) | st.binary(max_size=200)
# a tag's prefix with anything (often too short for a tag) after it
prefixed = st.builds(lambda rest: "hmac-sha256:" + rest, st.text(max_size=80) | st.just("x"))


def alert(**fields: object) -> Alert:
    made = Alert(key="payment-business-burst\x1facc_1", name=RULE.name, kind="BUSINESS",
                 resource="payment", group={"account_id": "acc_1"}, started_at=NOW - 5, count=3)  # fmt: skip
    for name, value in fields.items():
        setattr(made, name, value)
    made.trace_ids.append("a" * 32)
    return made


@BUDGET
@given(state=states | prefixed, tagged=st.booleans(), key=st.sampled_from([None, None, KEY]))
def test_whatever_redis_holds_the_adopted_alert_is_the_rules(state, tagged, key):
    if tagged and isinstance(state, str):
        state = "hmac-sha256:" + "0" * 64 + ":" + state  # a tag, not a valid one
    with bounded():
        found = decode_state(state, key)
        adopted = None if found is None else rebuild(found[0], found[0].key, RULE, NOW)
    if key is not None:
        assert found is None  # nothing here was tagged with the key
    if adopted is None:
        return
    event("adopted")
    labels = adopted.labels()
    assert labels["alertname"] == RULE.name and adopted.reason == ""
    assert set(labels) <= {"alertname", "severity", "kind", "resource", "error_type", "service",
                           "account_id"}  # fmt: skip
    assert adopted.group.keys() == {"account_id"} and adopted.started_at <= NOW
    assert all(len(v) <= 256 for v in labels.values())
    assert all(HEX.fullmatch(t) for t in (*adopted.trace_ids, *adopted.error_ids))
    assert not adopted.policy and not adopted.keep_stack and adopted.stack == ""
    adopted.to_alertmanager(NOW, 300.0)


def test_with_a_key_a_state_held_before_since_is_not_read():
    state = encode_state(alert(), RULE.name, KEY, deadline=NOW)
    assert decode_state(state, KEY, since=NOW - 1) is not None
    assert decode_state(state, KEY, since=NOW + 1) is None  # an old state written back
    undated = encode_state(alert(), RULE.name, KEY)
    assert decode_state(undated, KEY) is not None and decode_state(undated, KEY, NOW) is None
    assert decode_state(encode_state(alert(), RULE.name), None, since=NOW + 1) is not None


def test_a_forged_short_tag_is_dropped_not_raised():
    for forged in ("hmac-sha256:x", "hmac-sha256:", b"hmac-sha256:" + b"0" * 64):
        assert decode_state(forged, KEY) is None


@BUDGET
@given(position=st.integers(0, 10_000), char=st.characters())
def test_any_change_to_a_tagged_state_makes_it_unreadable(position, char):
    state = encode_state(alert(), RULE.name, KEY)
    assert state is not None and decode_state(state, KEY) is not None
    position %= len(state)
    changed = state[:position] + char + state[position + 1 :]
    if changed != state:
        assert decode_state(changed, KEY) is None


def test_a_state_reads_back_only_with_its_key_and_a_keyless_reader_reads_any():
    state = encode_state(alert(), RULE.name, KEY)
    assert state is not None
    back = decode_state(state, KEY)
    assert back is not None and back[0].to_dict() == alert().to_dict()
    assert decode_state(state, b"another key of 16+ bytes") is None
    assert decode_state(encode_state(alert(), RULE.name), KEY) is None  # untagged
    assert decode_state(state) is not None  # no key: nothing is authenticated


def test_the_key_comes_from_the_argument_else_the_environment(monkeypatch):
    monkeypatch.delenv(STATE_KEY_ENV, raising=False)
    assert state_key() is None
    monkeypatch.setenv(STATE_KEY_ENV, "from the environment")
    assert state_key() == b"from the environment"
    assert state_key("from the argument!") == b"from the argument!"
    with pytest.raises(ValueError, match="16 bytes"):
        state_key(b"short")


def test_the_yaml_key_reaches_the_engine_and_a_bad_one_is_refused_without_showing_it():
    from tracectx.alerting import AlertConfigError, build_engine, load_config

    config = load_config("state_key: a key of sixteen bytes or more\n")
    assert "sixteen" not in repr(config)
    assert build_engine(config)._state_key == b"a key of sixteen bytes or more"
    with pytest.raises(AlertConfigError, match="state_key") as refused:
        load_config("state_key: tooshort\n")
    assert "tooshort" not in str(refused.value)
