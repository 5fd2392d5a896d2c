"""A bound value that travels arrives exactly as bound: what baggage would change (stripped
whitespace, a lone surrogate, a credential's mask) is refused at bind() with a clear error,
never sent changed."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tests.fuzz.bounds import BUDGET, bounded
from tracectx import bind, capture, configure, extract, get_bound


def travel(value: object) -> tuple[str, dict[str, object]]:
    """Bind `value` under a propagated key, send it over a carrier, read it where it arrives:
    (the value as bound here, what the receiver's get_bound() holds)."""
    with bind(account_id=value):
        sent = get_bound()["account_id"]
        carrier = capture()
    with bounded():
        return sent, get_bound(extract(carrier))


@pytest.fixture(autouse=True)
def propagated() -> None:
    configure(propagate_keys=["account_id"], baggage_allowlist=["account_id"])


@BUDGET
@given(value=st.text(max_size=300) | st.integers() | st.floats(allow_nan=False))
@example(" acc_1")
@example("acc_1\r\n")
@example("\u3000acc")
@example("\ud800")
@example("a+b %20 ü ;,= \x00 \t x")
def test_any_value_bind_accepts_arrives_identical(value):
    try:
        sent, received = travel(value)
    except ValueError as exc:
        assert "account_id" in str(exc) and "propagated" in str(exc)
        assert "account_id" not in get_bound()  # refused: nothing was bound
        return
    assert received == {"account_id": sent}
    assert sent == (str(value) if len(str(value)) <= 256 else str(value)[:256].rstrip())


def test_a_long_value_cut_at_whitespace_travels_cut():
    """The cut to max_value_length (256) ends at a space the value does not end with: bound
    and sent without it, not refused."""
    value = "a" * 255 + " " + "b" * 44
    assert travel(value) == ("a" * 255, {"account_id": "a" * 255})
    with pytest.raises(ValueError, match="whitespace"):
        bind(account_id="a" * 299 + " ")  # the value itself ends with whitespace


@pytest.mark.parametrize(
    ("value", "why"),
    [
        (" acc_1", "whitespace"),
        ("acc_1\n", "whitespace"),
        ("acc_1\r", "whitespace"),
        ("\ud800", "surrogate"),
        ("postgres://app:s3cr3t@db/orders", "credential"),
    ],
)
def test_values_baggage_would_change_are_refused_with_the_reason(value, why):
    with pytest.raises(ValueError, match=why):
        bind(account_id=value)


def test_keys_that_do_not_travel_keep_any_value():
    configure(propagate_keys=[])
    with bind(account_id=" acc_1\r\n"):
        assert get_bound() == {"account_id": " acc_1\r\n"}
