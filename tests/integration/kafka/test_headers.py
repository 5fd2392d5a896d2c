"""Each refused header is counted once, under its fixed reason; reading never recurses."""

from __future__ import annotations

import logging

import pytest

from tests.integration.kafka.rejections import Rejections
from tracectx.metrics import REASONS
from tracectx.propagation import extract, has_remote_parent
from tracectx_kafka.headers import DUPLICATE, context_from_headers, header_map

TP = b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def refusals(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "refused inbound" in r.getMessage()]


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ([("traceparent", TP), ("traceparent", TP.replace(b"b7ad", b"c7ad"))], "duplicate_header"),
        ([("traceparent", b"\xff\xfe")], "non_utf8_header"),
        ([("traceparent", None)], "null_header"),
        ([("traceparent", 12345)], "wrong_type_header"),
        ([("traceparent", TP + b"0" * 10_000)], "oversized_header"),
        ([("traceparent", b"00-zz-yy-01")], "malformed_traceparent"),
        ([("traceparent", TP), ("baggage", b"k=" + b"v" * 100_000)], "oversized_baggage"),
    ],
    ids=["duplicate", "non_utf8", "none", "int", "huge", "malformed", "huge_baggage"],
)
def test_each_refusal_counted_once_with_its_fixed_reason(caplog, headers, reason):
    caplog.set_level(logging.DEBUG, logger="tracectx")
    with Rejections() as counted:
        ctx = context_from_headers(headers)
    assert has_remote_parent(ctx) is (reason == "oversized_baggage")
    assert counted.delta == {("kafka", reason): 1}
    (message,) = refusals(caplog)
    assert reason in message


def test_good_or_absent_traceparent_is_not_a_refusal(caplog):
    caplog.set_level(logging.DEBUG, logger="tracectx")
    with Rejections() as counted:
        assert has_remote_parent(context_from_headers([("traceparent", TP)]))
        assert not has_remote_parent(extract({"other": "x"}, transport="http"))
    assert refusals(caplog) == []
    assert not counted.delta


def test_equal_duplicates_are_one_header_and_only_text_is_compared():
    """A repeated identical header is not ambiguous; values that are not bytes are never
    compared with ``==`` (two deeply nested lists used to raise RecursionError)."""

    def nested(depth: int) -> list:
        value: list = []
        for _ in range(depth):
            value = [value]
        return value

    assert header_map([("traceparent", TP), ("TraceParent", TP)]) == {"traceparent": TP}
    view = header_map([("traceparent", nested(100_000)), ("traceparent", nested(100_000))])
    assert view["traceparent"] is DUPLICATE
    with Rejections() as counted:
        assert not has_remote_parent(context_from_headers(view))
    assert counted.delta == {("kafka", "duplicate_header"): 1}
    assert set(r for _, r in counted.delta) <= REASONS
