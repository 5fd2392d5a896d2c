"""Each refused header is counted once, for the reason it was refused."""

from __future__ import annotations

import logging

import pytest

from tracectx.propagation import extract, has_remote_parent
from tracectx_kafka.headers import context_from_headers

TP = b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def refusals(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "refused inbound" in r.getMessage()]


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        (
            [("traceparent", TP), ("traceparent", TP.replace(b"b7ad", b"c7ad"))],
            "duplicated traceparent",
        ),
        ([("traceparent", b"\xff\xfe")], "non-UTF-8 traceparent"),
        ([("traceparent", None)], "None traceparent"),
        ([("traceparent", b"00-zz-yy-01")], "malformed traceparent"),
    ],
)
def test_each_refusal_counted_once(caplog, headers, reason):
    caplog.set_level(logging.DEBUG, logger="tracectx")
    ctx = context_from_headers(headers)
    assert not has_remote_parent(ctx)
    (message,) = refusals(caplog)
    assert reason in message


def test_good_or_absent_traceparent_is_not_a_refusal(caplog):
    caplog.set_level(logging.DEBUG, logger="tracectx")
    assert has_remote_parent(context_from_headers([("traceparent", TP)]))
    assert not has_remote_parent(extract({"other": "x"}, transport="http"))
    assert refusals(caplog) == []
