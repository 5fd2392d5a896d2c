"""The error envelope: round-trips identity, survives hostile input."""

from __future__ import annotations

import json
import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracectx import EnvelopeError, ErrorKind, from_dict, new_error, register_kind, to_dict, traced
from tracectx.envelope import dumps_envelope, loads_envelope
from tracectx.errors import get_origin


class TestRoundTrip:
    def test_kind_code_message_metadata_id_and_origin_survive(self, spans):
        err = new_error(ErrorKind.BUSINESS, "no funds", code="E42", account_id="acc_1", amount=3)
        with pytest.raises(Exception), traced("pay"):
            raise err
        back = from_dict(json.loads(json.dumps(to_dict(err))))
        assert (back.kind, back.code, back.message) == (ErrorKind.BUSINESS, "E42", "no funds")
        assert back.metadata == {"account_id": "acc_1", "amount": 3}
        assert back.error_id == err.error_id
        assert get_origin(back) == get_origin(err)
        assert back.remote_type == "tracectx.errors.TracedError"

    def test_sensitive_metadata_is_redacted_on_the_way_out(self):
        err = new_error(ErrorKind.BUSINESS, "x", password="hunter2", card_number="4111")
        assert to_dict(err)["metadata"] == {"password": "[REDACTED]", "card_number": "[REDACTED]"}

    def test_plain_exception_is_classified(self):
        env = to_dict(TimeoutError("slow"))
        assert env["kind"] == "TRANSIENT" and env["type"] == "TimeoutError"

    def test_cause_id_survives(self):
        try:
            try:
                raise ValueError("root")
            except ValueError as root:
                raise new_error(ErrorKind.BUSINESS, "wrapped") from root
        except Exception as exc:
            back = from_dict(to_dict(exc))
            assert back.cause_id == exc.cause_id is not None

    def test_custom_kind_survives_and_unknown_kind_falls_back(self):
        auth = register_kind("AUTH", 4001, base=ErrorKind.BUSINESS)
        env = to_dict(new_error(auth, "denied"))
        assert from_dict(env).kind is auth
        env["kind"] = "MARTIAN"
        back = from_dict(env)
        assert back.kind is ErrorKind.UNKNOWN and back.metadata["remote_kind"] == "MARTIAN"

    def test_pickle_keeps_identity(self):
        err = new_error(ErrorKind.TRANSIENT, "x", code="C", k="v")
        back = pickle.loads(pickle.dumps(err))
        assert (back.error_id, back.kind, back.code, back.metadata) == (
            err.error_id,
            ErrorKind.TRANSIENT,
            "C",
            {"k": "v"},
        )


class TestHostileInput:
    @pytest.mark.parametrize(
        ("data", "message"),
        [
            ([], "must be an object"),
            ({}, "'message' is missing"),
            ({"message": 3, "error_id": "ab"}, "'message' must be a string"),
            ({"message": "m"}, "'error_id' is missing"),
            ({"message": "m", "error_id": "ZZ"}, "hex digits"),
            ({"message": "m", "error_id": "ab", "metadata": [1]}, "'metadata' must be an object"),
            ({"message": "m", "error_id": "ab", "v": 99}, "unsupported envelope version"),
        ],
    )
    def test_clear_errors(self, data, message):
        with pytest.raises(EnvelopeError, match=message):
            from_dict(data)

    def test_huge_values_are_cut(self):
        back = from_dict(
            {"message": "m" * 100_000, "error_id": "ab", "metadata": {"k": "v" * 100_000}}
        )
        assert len(back.message) == 4096 and len(back.metadata["k"]) == 1024

    def test_bad_origin_is_dropped(self):
        back = from_dict({"message": "m", "error_id": "ab", "origin": {"trace_id": "<script>"}})
        assert get_origin(back) is None

    @pytest.mark.parametrize(
        ("raw", "message"),
        [
            (b"\xff\xfe{", "not UTF-8"),
            (b'{"message": ', "not JSON"),
            (b"[" * 100_000 + b"]" * 100_000, "more than|nests too deeply"),
        ],
    )
    def test_wire_bytes(self, raw, message):
        with pytest.raises(EnvelopeError, match=message):
            loads_envelope(raw)

    def test_wire_round_trip(self):
        err = new_error(ErrorKind.FATAL, "ünïcode ✓", code="E1")
        assert loads_envelope(dumps_envelope(err)).message == "ünïcode ✓"

    @settings(max_examples=300, deadline=None)
    @given(
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
            lambda children: st.lists(children) | st.dictionaries(st.text(), children),
            max_leaves=20,
        )
    )
    def test_anything_gives_an_error_or_a_safe_value(self, data):
        try:
            back = from_dict(data)
        except EnvelopeError:
            return
        assert isinstance(back.message, str) and isinstance(back.metadata, dict)

    @settings(max_examples=200, deadline=None)
    @given(
        st.fixed_dictionaries(
            {"message": st.text(), "error_id": st.from_regex(r"\A[0-9a-f]{1,32}\Z")},
            optional={
                "kind": st.sampled_from(["BUSINESS", "FATAL", "x"]) | st.integers(),
                "code": st.text() | st.none() | st.integers(),
                "metadata": st.dictionaries(st.text(max_size=10), st.text() | st.integers()),
                "origin": st.dictionaries(st.text(), st.text()),
            },
        )
    )
    def test_valid_core_fields_always_round_trip_the_id(self, data):
        try:
            back = from_dict(data)
        except EnvelopeError:
            return
        assert back.error_id == data["error_id"]
        assert from_dict(to_dict(back)).error_id == data["error_id"]


class TestHostileEnvelopes:
    def test_id_with_trailing_newline_is_refused(self):
        good = to_dict(ValueError("x"))
        for field in ("error_id", "cause_id"):
            bad = {**good, field: "abcdef0123456789\n"}
            if field == "error_id":
                with pytest.raises(EnvelopeError):
                    from_dict(bad)
            else:
                assert from_dict(bad).cause_id is None
        bad_origin = {**good, "origin": {"trace_id": "ab\n", "span_id": "cd"}}
        assert from_dict(bad_origin).origin is None

    def test_deep_metadata_is_bounded_not_a_recursion_error(self):
        deep: object = "leaf"
        for _ in range(5_000):
            deep = [deep]
        err = from_dict({**to_dict(ValueError("x")), "metadata": {"k": deep}})
        assert len(err.metadata["k"]) <= 1024

    def test_deep_json_text_is_an_envelope_error(self):
        with pytest.raises(EnvelopeError):
            loads_envelope("[" * 1_000 + "]" * 1_000)

    def test_non_finite_numbers_stay_json(self):
        import json

        from tracectx import ErrorKind, new_error

        envelope = to_dict(new_error(ErrorKind.BUSINESS, "x", ratio=float("nan")))
        json.dumps(envelope, allow_nan=False)

    def test_inbound_metadata_is_redacted(self):
        err = from_dict({**to_dict(ValueError("x")), "metadata": {"password": "p", "a": 1}})
        assert err.metadata == {"password": "[REDACTED]", "a": 1}

    def test_deep_version_value_is_an_envelope_error(self):
        deep: object = 1
        for _ in range(5_000):
            deep = [deep]
        with pytest.raises(EnvelopeError, match="unsupported envelope version list"):
            from_dict({**to_dict(ValueError("x")), "v": deep})
