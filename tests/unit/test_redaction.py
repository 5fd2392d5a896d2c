"""Sensitive keys are masked; the list is configurable."""

from __future__ import annotations

import pytest

from tracectx import configure
from tracectx.redaction import is_sensitive, redact


@pytest.mark.parametrize(
    "key", ["password", "X-Auth-Token", "Authorization", "card_number", "client_secret", "CVV"]
)
def test_sensitive_keys(key):
    assert is_sensitive(key)


@pytest.mark.parametrize("key", ["account_id", "currency", "amount"])
def test_ordinary_keys(key):
    assert not is_sensitive(key)


def test_nested_and_configurable():
    configure(redact_keys=["pin"], redact_mask="***")
    assert redact({"pin": 1234, "password": "x", "inner": {"pin_code": 1}}) == {
        "pin": "***",
        "password": "x",
        "inner": {"pin_code": "***"},
    }
