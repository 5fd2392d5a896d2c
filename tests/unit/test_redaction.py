"""Sensitive keys are masked by word, nested structures walked; the list is configurable."""

from __future__ import annotations

import pytest

from tracectx import configure, new_error, to_dict, traced
from tracectx import semconv as sc
from tracectx.redaction import is_sensitive, redact

SENSITIVE = [
    "password",
    "Password",
    "token",
    "X-Auth-Token",
    "Authorization",
    "card_number",
    "cardNumber",
    "client_secret",
    "CVV",
    "api_key",
    "API_KEY",
    "apiKey",
    "secret",
    "passphrase",
    "pwd",
    "pin",
    "db.password",
    "accesstoken",
    "session_id",
    "private-key",
]


@pytest.mark.parametrize("key", SENSITIVE)
def test_sensitive_keys(key):
    assert is_sensitive(key)


@pytest.mark.parametrize(
    "key",
    ["account_id", "currency", "amount", "business_name", "classname", "spinner", "pinned_at"],
)
def test_ordinary_keys_are_not_over_masked(key):
    assert not is_sensitive(key)


def test_nested_mappings_and_lists_of_mappings_are_walked():
    data = {
        "creds": {"user": "u1", "password": "p1"},
        "cards": [{"last4": "4242", "cvv": "737"}, ("x", {"token": "t"})],
        "ok": "v",
    }
    assert redact(data) == {
        "creds": "[REDACTED]",  # "creds" is itself a sensitive word
        "cards": [{"last4": "4242", "cvv": "[REDACTED]"}, ["x", {"token": "[REDACTED]"}]],
        "ok": "v",
    }
    assert redact({"db": {"user": "u", "password": "p"}}) == {
        "db": {"user": "u", "password": "[REDACTED]"}
    }


def test_depth_is_bounded():
    deep: dict[str, object] = {}
    node = deep
    for _ in range(5_000):
        node["n"] = {}
        node = node["n"]  # type: ignore[assignment]
    redact(deep)  # no RecursionError


def test_configurable_words_and_mask():
    configure(redact_keys=["pin"], redact_mask="***")
    assert redact({"pin": 1234, "password": "x", "inner": {"pin_code": 1}}) == {
        "pin": "***",
        "password": "x",
        "inner": {"pin_code": "***"},
    }


def test_every_output_of_an_error_is_redacted(spans):
    """Span attributes (nested keys flattened) and the envelope use the same redaction."""
    err = new_error(
        __import__("tracectx").ErrorKind.BUSINESS,
        "x",
        db={"user": "u", "password": "hunter2"},
        cards=[{"cvv": "737"}],
        api_key="k",
    )
    with pytest.raises(Exception), traced("op"):
        raise err
    (span,) = spans.get_finished_spans()
    attrs = {k: v for k, v in span.attributes.items() if k.startswith(sc.ATTR_META_PREFIX)}
    assert attrs[sc.ATTR_META_PREFIX + "db.user"] == "u"
    assert attrs[sc.ATTR_META_PREFIX + "db.password"] == "[REDACTED]"
    assert attrs[sc.ATTR_META_PREFIX + "api_key"] == "[REDACTED]"
    assert "737" not in str(attrs) and "hunter2" not in str(attrs)
    envelope = to_dict(err)
    assert "hunter2" not in str(envelope) and "737" not in str(envelope)


def test_pickled_errors_carry_redacted_metadata(spans):
    """Pickling is leaving the process (process pools, Celery's pickle serializer)."""
    import pickle

    from tracectx import ErrorKind, bind

    traced_err = new_error(ErrorKind.BUSINESS, "x", password="hunter2", account_id="a1")
    with pytest.raises(ValueError) as info, traced("work"):
        bind(password="hunter2", account_id="a1")
        raise ValueError("plain")
    for err in (traced_err, info.value):
        blob = pickle.dumps(err)
        assert b"hunter2" not in blob
        assert pickle.loads(blob).metadata == {"password": "[REDACTED]", "account_id": "a1"}
