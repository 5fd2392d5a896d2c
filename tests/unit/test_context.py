"""bind()/bound(): metadata in baggage, merged into errors, bounded inbound."""

from __future__ import annotations

import pytest
from opentelemetry import baggage

from tracectx import bind, bound, capture, configure, extract, get_bound, new_error, unbind
from tracectx.context import BOUND_KEYS_ENTRY


class TestBind:
    def test_plain_call_binds_for_the_rest_of_the_context(self):
        bind(account_id="acc_123")
        assert get_bound() == {"account_id": "acc_123"}
        assert baggage.get_baggage("account_id") == "acc_123"

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
            err = new_error(__import__("tracectx").ErrorKind.BUSINESS, "x", currency="EUR")
        assert err.metadata == {"account_id": "acc_123", "currency": "EUR"}

    def test_bad_key_is_a_clear_error(self):
        with pytest.raises(ValueError, match="metadata key 'a b'"):
            bind(**{"a b": 1})

    def test_long_values_are_cut(self):
        bind(note="x" * 10_000)
        assert len(get_bound()["note"]) == 256


class TestInboundBaggage:
    def test_bound_keys_cross_a_carrier(self):
        with bound(account_id="acc_123"):
            carrier = capture()
        assert get_bound(extract(carrier)) == {"account_id": "acc_123"}

    def test_foreign_baggage_is_not_metadata_unless_allowlisted(self):
        ctx = extract({"baggage": "tenant=t1,user=u9"})
        assert get_bound(ctx) == {}
        configure(baggage_allowlist=["tenant"])
        assert get_bound(ctx) == {"tenant": "t1"}

    def test_oversized_baggage_is_bounded(self):
        header = ",".join(f"k{i}={'v' * 40}" for i in range(400))
        ctx = extract({"baggage": header})
        entries = baggage.get_all(ctx)
        assert len(entries) <= 180
        assert sum(len(k) + len(str(v)) + 1 for k, v in entries.items()) <= 8192

    def test_hostile_bound_list_is_filtered(self):
        ctx = extract({"baggage": f"{BOUND_KEYS_ENTRY}=a%2C%3Cscript%3E%2Cb,a=1,b=2"})
        assert get_bound(ctx) == {"a": "1", "b": "2"}
