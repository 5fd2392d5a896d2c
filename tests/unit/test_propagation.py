"""capture/extract across a carrier; hostile headers never break the hop."""

from __future__ import annotations

import pytest
from opentelemetry import trace

from tests.helpers import by_name, hex_span, hex_trace
from tracectx import bound, capture, configure, extract, get_bound, restore, traced
from tracectx.propagation import has_remote_parent


def test_trace_and_metadata_cross_a_carrier(spans):
    configure(propagate_keys=["account_id"], baggage_allowlist=["account_id"])
    with traced("send"), bound(account_id="a1"):
        carrier = capture()
    with restore(carrier), traced("receive"):
        assert get_bound() == {"account_id": "a1"}
    send, receive = by_name(spans, "send"), by_name(spans, "receive")
    assert hex_trace(receive) == hex_trace(send)
    assert format(receive.parent.span_id, "016x") == hex_span(send)


@pytest.mark.parametrize(
    "carrier",
    [
        {"traceparent": "00-zz-not-hex"},
        {"traceparent": b"\xff\xfe\xfd"},
        {"traceparent": 12345},
        {"traceparent": None, "baggage": None},
        {"traceparent": "00-" + "0" * 32 + "-" + "0" * 16 + "-01"},
        {"baggage": "=" * 100_000},
        "not a mapping",
        None,
    ],
)
def test_hostile_carrier_gives_fresh_root(carrier, spans):
    ctx = extract(carrier)
    assert not has_remote_parent(ctx)
    with restore(carrier), traced("fresh"):
        pass
    assert by_name(spans, "fresh").parent is None


def test_bytes_headers_are_read():
    with trace.get_tracer("t").start_as_current_span("s"):
        carrier = {k: v.encode() for k, v in capture().items()}
    assert has_remote_parent(extract(carrier))


@pytest.mark.parametrize(
    ("carrier", "refused"),
    [
        ({"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}, False),
        ({"other": "x"}, False),
        ({"traceparent": "00-zz-yy-01"}, True),
        ({"baggage": "ok=1,bad key=2"}, True),
        ({"baggage": "tracectx.bound=a"}, True),  # the legacy entry: dropped by sanitize_baggage
    ],
    ids=["good", "absent", "malformed", "malformed_baggage", "dropped"],
)
def test_extract_checked_tells_whether_anything_was_refused(carrier, refused):
    """What a cache of extracted contexts relies on: a refusal is never reported as clean."""
    from tracectx.propagation import extract_checked

    ctx, was_refused = extract_checked(carrier, transport="http")
    assert was_refused is refused
    assert has_remote_parent(ctx) is ("traceparent" in carrier and carrier["traceparent"][3] != "z")
