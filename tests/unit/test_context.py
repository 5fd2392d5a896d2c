"""bind()/bound(): metadata stays in the process unless chosen to travel; inbound baggage is
metadata only for keys this service trusts."""

from __future__ import annotations

from typing import ClassVar

import pytest
from opentelemetry import baggage

from tracectx import (
    ErrorKind,
    bind,
    bound,
    capture,
    configure,
    extract,
    get_bound,
    new_error,
    unbind,
)
from tracectx.context import BOUND_KEYS_ENTRY


class TestBind:
    def test_plain_call_binds_for_the_rest_of_the_context(self):
        bind(account_id="acc_123")
        assert get_bound() == {"account_id": "acc_123"}

    def test_context_manager_restores_on_exit(self):
        with bound(order=7):
            assert get_bound() == {"order": "7"}
        assert get_bound() == {}

    def test_nested_bindings_merge(self):
        with bound(a=1), bound(b=2):
            assert get_bound() == {"a": "1", "b": "2"}

    def test_unbind(self):
        bind(a=1, b=2)
        unbind("a")
        assert get_bound() == {"b": "2"}

    def test_bound_metadata_is_merged_into_errors_explicit_wins(self):
        with bound(account_id="acc_123", currency="CNY"):
            err = new_error(ErrorKind.BUSINESS, "x", currency="EUR")
        assert err.metadata == {"account_id": "acc_123", "currency": "EUR"}

    def test_bad_key_is_a_clear_error(self):
        with pytest.raises(ValueError, match="metadata key 'a b'"):
            bind(**{"a b": 1})

    def test_long_values_are_cut(self):
        bind(note="x" * 10_000)
        assert len(get_bound()["note"]) == 256

    def test_nested_values_keep_their_shape(self):
        bind(creds={"user": "u1", "password": "hunter2"})
        assert get_bound() == {"creds": {"user": "u1", "password": "hunter2"}}


class TestWhatTravels:
    """The README promise: nothing bound leaves the process unless the user chose the key, and
    a sensitive key never does."""

    SECRETS: ClassVar[dict[str, str]] = {
        "password": "s3cr3t-password",
        "token": "s3cr3t-token",
        "authorization": "Bearer s3cr3t-bearer",
        "card_number": "4111111111111111",
        "cvv": "737",
        "api_key": "s3cr3t-apikey",
        "secret": "s3cr3t-secret",
        "Password": "s3cr3t-Password",
        "API_KEY": "s3cr3t-API_KEY",
        "X-Auth-Token": "s3cr3t-xauth",
        "passphrase": "s3cr3t-phrase",
        "pwd": "s3cr3t-pwd",
        "pin": "9876",
    }

    def test_nothing_bound_travels_by_default(self):
        with bound(account_id="acc_123", **self.SECRETS):
            carrier = capture()
        assert "baggage" not in carrier

    def test_sensitive_keys_never_travel_even_when_listed(self):
        configure(propagate_keys=["*"])
        with bound(account_id="acc_123", db={"password": "nested-s3cr3t"}, **self.SECRETS):
            header = capture().get("baggage", "")
        assert "account_id=acc_123" in header
        for value in [*self.SECRETS.values(), "nested-s3cr3t"]:
            assert value.split()[-1] not in header
        assert "db=" in header  # the key was listed; its nested secret is masked

    def test_listed_keys_travel_and_trusted_keys_are_read(self):
        configure(propagate_keys=["account_id"], baggage_allowlist=["account_id"])
        with bound(account_id="acc_123", order="o1"):
            carrier = capture()
        assert get_bound(extract(carrier)) == {"account_id": "acc_123"}

    def test_unbind_removes_the_propagated_entry(self):
        configure(propagate_keys=["a"])
        bind(a=1)
        unbind("a")
        assert "baggage" not in capture()


class TestInboundBaggage:
    def test_foreign_baggage_is_not_metadata_unless_allowlisted(self):
        ctx = extract({"baggage": "tenant=t1,user=u9"})
        assert get_bound(ctx) == {}
        configure(baggage_allowlist=["tenant"])
        assert get_bound(ctx) == {"tenant": "t1"}

    def test_a_forged_bound_list_is_not_trusted(self):
        """The attack from the security review: the sender names its own entries trusted."""
        header = (
            f"{BOUND_KEYS_ENTRY}=account_id%2Cerror_kind%2Crole,"
            "account_id=acc_VICTIM,error_kind=FATAL,role=admin"
        )
        ctx = extract({"baggage": header})
        assert get_bound(ctx) == {}
        assert baggage.get_baggage(BOUND_KEYS_ENTRY, ctx) is None  # not forwarded either

    def test_sensitive_inbound_keys_are_not_metadata_even_if_allowlisted(self):
        configure(baggage_allowlist=["*"])
        ctx = extract({"baggage": "tenant=t1,password=p"})
        assert get_bound(ctx) == {"tenant": "t1"}

    def test_oversized_baggage_is_bounded(self):
        header = ",".join(f"k{i}={'v' * 40}" for i in range(400))
        ctx = extract({"baggage": header})
        entries = baggage.get_all(ctx)
        assert len(entries) <= 180
        assert sum(len(k) + len(str(v)) + 1 for k, v in entries.items()) <= 8192


class TestForwarding:
    def test_an_untrusted_copy_of_a_key_we_propagate_is_not_forwarded(self):
        """Edge: propagates account_id, trusts nothing inbound. A client's account_id must not
        ride on to a worker that trusts account_id from its own upstream."""
        configure(propagate_keys=["account_id"], baggage_allowlist=[])
        ctx = extract({"baggage": "account_id=acc_VICTIM,synthetic=1"})
        assert baggage.get_baggage("account_id", ctx) is None
        assert baggage.get_baggage("synthetic", ctx) == "1"  # other baggage passes through
        assert "acc_VICTIM" not in capture(ctx).get("baggage", "")

    def test_a_trusted_key_from_upstream_is_forwarded(self):
        configure(propagate_keys=["account_id"], baggage_allowlist=["account_id"])
        ctx = extract({"baggage": "account_id=acc_1"})
        assert get_bound(ctx) == {"account_id": "acc_1"}
        assert "account_id=acc_1" in capture(ctx)["baggage"]
