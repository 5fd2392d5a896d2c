"""Property tests for the core readers of outside data: carriers, baggage, envelopes, redaction.

Each asserts what a caller relies on — only the documented error types, no hang (every example
well under a second), bounded output — with a budget small enough for CI.
"""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st
from opentelemetry import baggage

from tests.fuzz.bounds import BUDGET, bounded
from tracectx import EnvelopeError, configure, extract, from_dict, get_bound
from tracectx.context import MAX_BAGGAGE_BYTES, MAX_BAGGAGE_ENTRIES
from tracectx.envelope import MAX_METADATA_ENTRIES, loads_envelope
from tracectx.metrics import REASONS
from tracectx.redaction import redact
from tracectx.safetext import escape_control, has_control

json_leaf = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=50)
json_value = st.recursive(
    json_leaf,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=40,
)
header_value = (
    st.text(max_size=300)
    | st.binary(max_size=300)
    | st.none()
    | st.integers()
    | st.lists(st.text(max_size=30), max_size=3)
)
baggage_text = st.lists(
    st.tuples(
        st.text(alphabet="abc_.-=%;, \t\x00é", max_size=12),
        st.text(alphabet="xyz=%;, \n\x1b", max_size=20),
    ),
    max_size=30,
).map(lambda pairs: ",".join(f"{k}={v}" for k, v in pairs))


@BUDGET
@given(
    st.dictionaries(
        st.sampled_from(["traceparent", "tracestate", "baggage", "Traceparent", "x"]) | st.text(),
        header_value,
        max_size=6,
    )
)
def test_extract_takes_any_carrier(carrier):
    with bounded():
        ctx = extract(carrier, transport="http")
    entries = baggage.get_all(ctx)
    assert len(entries) <= MAX_BAGGAGE_ENTRIES
    assert sum(len(k) + 1 + len(str(v)) for k, v in entries.items()) <= MAX_BAGGAGE_BYTES
    assert get_bound(ctx) == {}  # nothing inbound is metadata without an allow-list


@BUDGET
@given(baggage_text, st.lists(st.sampled_from(["a*", "*", "tenant", "x_y"]), max_size=2))
def test_baggage_is_only_trusted_by_allow_list(header, allow):
    configure(baggage_allowlist=allow)
    try:
        with bounded():
            ctx = extract({"baggage": header})
        bound = get_bound(ctx)
        assert all(isinstance(v, str) for v in bound.values())
        if not allow:
            assert bound == {}
        assert "tracectx.bound" not in baggage.get_all(ctx)
    finally:
        configure(baggage_allowlist=[])


@BUDGET
@given(json_value)
def test_from_dict_refuses_with_envelope_error_only(data):
    with bounded():
        try:
            err = from_dict(data)
        except EnvelopeError:
            return
    assert len(err.metadata) <= MAX_METADATA_ENTRIES + 1  # + remote_kind
    json.dumps(err.metadata)


@BUDGET
@given(st.binary(max_size=2_000) | st.text(max_size=2_000))
def test_loads_envelope_refuses_with_envelope_error_only(raw):
    with bounded():
        try:
            loads_envelope(raw)
        except EnvelopeError:
            pass


@BUDGET
@given(st.integers(min_value=1, max_value=20_000))
def test_deep_nesting_anywhere_is_refused_or_bounded(depth):
    text = (
        '{"v":1,"message":"m","error_id":"ab","metadata":{"k":' + "[" * depth + "]" * depth + "}}"
    )
    with bounded():
        try:
            loads_envelope(text)
        except EnvelopeError:
            pass


@BUDGET
@given(st.dictionaries(st.text(max_size=20), json_value, max_size=8))
def test_redact_takes_anything_json(data):
    with bounded():
        out = redact(data)
    assert set(out) == set(data)


@BUDGET
@given(st.text(max_size=500), st.none() | st.integers(min_value=1, max_value=300))
def test_escape_control_leaves_nothing_a_terminal_obeys(text, limit):
    out = escape_control(text, limit)
    assert not has_control(out)
    assert "\x1b" not in out and "\x07" not in out and "\n" not in out


def test_rejection_reasons_are_a_fixed_small_set():
    assert len(REASONS) < 16


# -- a firing alert's state, read back from Redis (tracectx.alerting.handover) ----------------

alert_fields = st.fixed_dictionaries(
    {},
    optional={
        name: json_value
        for name in (
            "key", "name", "kind", "resource", "error_type", "code", "service", "reason",
            "stack", "group", "started_at", "count", "score", "jaeger_template", "keep_stack",
            "policy", "trace_ids", "error_ids", "error_types",
        )
    },
)  # fmt: skip


any_number = st.integers() | st.floats() | st.just(10**400)
typed_alert = st.fixed_dictionaries(
    {
        **{
            name: st.text(max_size=30)
            for name in ("key", "name", "kind", "resource", "error_type", "code", "service",
                         "reason", "stack")
        },
        "group": st.dictionaries(st.text(max_size=10), st.text(max_size=20), max_size=3),
        "started_at": any_number,
        "count": any_number,
        "score": st.none() | any_number,
        "keep_stack": st.booleans(),
        "policy": st.booleans(),
        "trace_ids": st.lists(st.text(max_size=32), max_size=8),
        "error_ids": st.lists(st.text(max_size=16), max_size=8),
        "error_types": st.lists(st.text(max_size=16), max_size=20),
    }
)  # fmt: skip


@BUDGET
@given(
    st.text(max_size=400)
    | st.binary(max_size=400)
    | st.builds(json.dumps, st.fixed_dictionaries({"rule": json_value, "alert": alert_fields}))
    | st.builds(json.dumps, json_value)
    | st.builds(
        json.dumps, st.fixed_dictionaries({"rule": st.none() | st.text(), "alert": typed_alert})
    )
)
def test_alert_state_reader_returns_an_alert_or_none(state):
    from tracectx.alerting.alerts import MAX_SAMPLES, Alert
    from tracectx.alerting.handover import decode_state

    with bounded():
        found = decode_state(state)
    if found is not None:
        alert, rule = found
        assert isinstance(alert, Alert) and (rule is None or isinstance(rule, str))
        assert len(alert.trace_ids) <= MAX_SAMPLES and len(alert.error_types) <= 16
        alert.to_dict()  # what leaves the process works on whatever was read
        alert.to_alertmanager(0.0, 300.0)
        alert.labels()


@BUDGET
@given(
    group=st.dictionaries(st.text(max_size=10), st.text(max_size=20), max_size=4),
    count=st.integers(0, 10**9),
    started=st.floats(0, 4e9),
    ids=st.lists(st.text(min_size=1, max_size=16), max_size=8),
    rule=st.none() | st.text(max_size=20),
)
def test_alert_state_round_trips(group, count, started, ids, rule):
    from tracectx.alerting.alerts import Alert
    from tracectx.alerting.handover import decode_state, encode_state

    alert = Alert(key="k", name="n", kind="BUSINESS", resource="r", group=group,
                  started_at=started, count=count)  # fmt: skip
    alert.trace_ids.extend(ids)
    alert.error_ids.extend(ids)
    state = encode_state(alert, rule)
    assert state is not None
    back = decode_state(state)
    assert back is not None and back[1] == rule
    assert back[0].to_dict() == alert.to_dict() and back[0].started_at == started
