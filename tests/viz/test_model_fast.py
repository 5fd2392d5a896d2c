"""`Span.fast` / `SpanEvent.fast` (no dataclass ``__init__``) build exactly what `Span(...)` /
`SpanEvent(...)` build from the same values, sensitive metadata masked the same way."""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from tracectx import configure
from tracectx import semconv as sc
from tracectx.viz.model import Link, Span, SpanEvent

META = sc.ATTR_META_PREFIX
keys = st.sampled_from(
    [f"{META}password", f"{META}api_key", f"{META}order", f"{META}creds.token", META, "http.route"]
) | st.text(max_size=10)
values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
    max_leaves=8,
)
attributes = st.dictionaries(keys, values, max_size=6)
times = st.none() | st.integers(0, 2**63)
events = st.lists(st.tuples(st.text(max_size=6), attributes, times), max_size=3)
links = st.lists(st.builds(Link, st.text(max_size=4), st.text(max_size=4)), max_size=2)
ids = st.text(alphabet="0123456789abcdef", max_size=32)


def _fields(span: Span | SpanEvent) -> dict[str, Any]:
    return {f.name: getattr(span, f.name) for f in dataclasses.fields(span)}  # all set


span_heads = st.tuples(
    ids, ids, st.none() | ids, st.text(max_size=8), st.text(max_size=8),
    st.integers(0, 2**63), st.integers(0, 2**63), st.booleans(), st.text(max_size=8),
    st.sampled_from(["internal", "server", "client"]),
)  # fmt: skip


@given(span_heads, attributes, events, links)
def test_fast_span_is_the_dataclass_span(
    head: tuple[str, str, str | None, str, str, int, int, bool, str, str],
    attrs: dict[str, Any],
    evs: list[tuple[str, dict[str, Any], int | None]],
    lks: list[Link],
) -> None:
    slow_events = [SpanEvent(n, dict(a), t) for n, a, t in evs]
    fast_events = [SpanEvent.fast(n, dict(a), t) for n, a, t in evs]
    assert [_fields(e) for e in fast_events] == [_fields(e) for e in slow_events]
    assert all(type(e) is SpanEvent for e in fast_events)
    slow = Span(*head, dict(attrs), slow_events, list(lks))
    fast = Span.fast(*head, dict(attrs), fast_events, list(lks))
    assert type(fast) is Span and fast == slow and _fields(fast) == _fields(slow)
    assert repr(fast) == repr(slow)


def test_fast_takes_the_leading_fields_in_order() -> None:
    """Readers call both with positional arguments: same names, same order."""
    for cls, count in ((Span, 13), (SpanEvent, 3)):
        params = list(inspect.signature(cls.fast).parameters)
        assert params == [f.name for f in dataclasses.fields(cls)][:count]


def test_fast_masks_sensitive_metadata() -> None:
    attrs = {f"{META}password": "raw", f"{META}n": {"token": "t"}, "http.route": "/x"}
    span = Span.fast("t", "s", None, "n", "svc", 1, 2, True, "", "internal", attrs, [], [])
    event = SpanEvent.fast("exception", dict(attrs), None)
    masked = {f"{META}password": "[REDACTED]", f"{META}n": {"token": "[REDACTED]"}}
    assert span.attributes == event.attributes == {**masked, "http.route": "/x"}
    configure(redact_mask="***")  # the rule in force, as Span() reads it
    span = Span.fast("t", "s", None, "n", "svc", 1, 2, True, "", "internal", attrs, [], [])
    assert span.attributes[f"{META}password"] == "***"
    assert span.resource_attributes is None and span.warnings is None and span.flags is None
