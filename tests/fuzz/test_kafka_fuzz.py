"""Property tests for what the Kafka integration reads from a record: its headers (propagation
context) and its dead-letter error envelope.

Each asserts what a consumer relies on: no exception (a fresh root, or None from `dlq_error`),
no hang (every example under a second), bounded memory, and a ``tracectx.propagation.rejected``
count that stays within the fixed reasons — at most one count per refused header.
"""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from opentelemetry import trace
from opentelemetry.context import Context

from tests.fuzz.bounds import BUDGET, bounded
from tests.integration.kafka.rejections import Rejections
from tracectx import TracedError
from tracectx.metrics import REASONS
from tracectx.propagation import has_remote_parent
from tracectx_kafka import dlq_error
from tracectx_kafka.headers import DUPLICATE, context_from_headers, header_map

TRACEPARENT = b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
FIELDS = ("traceparent", "tracestate", "baggage")  # what the global propagator reads


def assert_counted_sanely(counted: Rejections, most: int) -> None:
    assert {system for system, _ in counted.delta} <= {"kafka"}
    assert {reason for _, reason in counted.delta} <= REASONS
    assert sum(counted.delta.values()) <= most


# Header values: kafka-python gives bytes or None; huge ones are built, not drawn (fast).
huge = st.builds(
    lambda chunk, size: chunk * size,
    st.sampled_from([b"a", b"\xff", b",", b"k=v,", b"00-", "é".encode()]),
    st.integers(8000, 200_000),
)
near_valid = st.builds(
    lambda a, b: TRACEPARENT[:a] + b + TRACEPARENT[a:],
    st.integers(0, len(TRACEPARENT)),
    st.binary(max_size=4),
)
header_value = (
    st.none()
    | st.binary(max_size=80)
    | huge
    | near_valid
    | st.just(TRACEPARENT)
    | st.just(b"k=v,tracectx.bound=account_id,account_id=acc_VICTIM")
)
header_name = st.sampled_from([*FIELDS, "TraceParent", "tracectx-error"]) | st.text(max_size=12)
header_list = st.lists(st.tuples(header_name, header_value), max_size=12)


@BUDGET
@given(header_list)
def test_header_reader_never_fails_and_counts_each_refusal_once(headers):
    with Rejections() as counted, bounded():
        ctx = context_from_headers(headers)
    assert isinstance(ctx, Context)
    view = header_map(headers)
    if has_remote_parent(ctx):  # only from one unambiguous, valid traceparent
        raw = view["traceparent"]
        assert raw is not DUPLICATE and isinstance(raw, bytes)
        trace_id = trace.get_current_span(ctx).get_span_context().trace_id
        assert raw.decode().split("-")[1] == format(trace_id, "032x")
    assert_counted_sanely(counted, most=len(FIELDS) + 1)  # +1: a malformed traceparent


# Wrong types too: whatever an application (or a broken client) put in a header list.
wrong = st.recursive(
    st.none() | st.integers() | st.floats() | st.text(max_size=20) | st.binary(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=20,
)


class Deep(list[Any]):
    """A list nested `depth` levels deep that prints short (a falsifying example stays readable)."""

    def __init__(self, depth: int) -> None:
        value: list[Any] = []
        for _ in range(depth - 1):
            value = [value]
        super().__init__([value] if depth else [])
        self.depth = depth

    def __repr__(self) -> str:
        return f"Deep({self.depth})"


items = st.tuples(header_name, wrong | st.builds(Deep, st.integers(0, 50_000))) | wrong
anything = st.lists(items, max_size=8) | wrong


@BUDGET
@given(anything)
def test_header_reader_on_wrong_types(headers):
    with Rejections() as counted, bounded():
        ctx = context_from_headers(headers)
    assert isinstance(ctx, Context)
    assert_counted_sanely(counted, most=len(FIELDS) + 1)


# Envelopes: valid-looking JSON with hostile fields, deep nesting, bytes that are not JSON.
json_leaf = st.none() | st.booleans() | st.integers() | st.text(max_size=40)
json_value = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)
envelope = st.fixed_dictionaries(
    {},
    optional={
        "v": json_value | st.just(1),
        "type": json_value,
        "kind": json_value | st.sampled_from(["BUSINESS", "TRANSIENT", "FATAL"]),
        "code": json_value,
        "message": json_value | st.text(max_size=40),
        "metadata": json_value,
        "error_id": json_value | st.sampled_from(["ab", "0" * 32, "AB", "ab\n", ""]),
        "cause_id": json_value,
        "origin": json_value,
    },
).map(lambda d: json.dumps(d).encode())
brackets = st.builds(
    lambda opener, depth, closed: opener * depth + (b"]" if opener == b"[" else b"}") * closed,
    st.sampled_from([b"[", b'{"a":']),
    st.integers(1, 40_000),
    st.integers(0, 40_000),
)
in_metadata = st.builds(
    lambda depth: (
        b'{"v":1,"message":"m","error_id":"ab","metadata":{"a":'
        + b"[" * depth
        + b"]" * depth
        + b"}}"
    ),
    st.integers(1, 3000),
)
envelope_value = envelope | brackets | in_metadata | header_value | wrong


def call_deep(depth: int, fn: Any) -> Any:
    """`fn()` with `depth` frames already on the stack (a consumer deep in a framework)."""
    return fn() if depth == 0 else call_deep(depth - 1, fn)


@BUDGET
@given(envelope_value, st.booleans(), st.integers(0, 600))
def test_dlq_error_returns_an_error_or_none(raw, duplicated, depth):
    headers = [("tracectx-error", raw)]
    if duplicated:
        headers.append(("tracectx-error", b"{}"))
    record = SimpleNamespace(headers=headers)
    with Rejections() as counted, bounded():
        found = call_deep(depth, lambda: dlq_error(record))
        again = dlq_error(record)
    assert found is None or isinstance(found, TracedError)
    assert again is found  # read once
    assert_counted_sanely(counted, most=1)
    assert (found is None) is (sum(counted.delta.values()) == 1)


class Message:
    """A confluent-kafka-shaped record: accessor methods, a new header list per call."""

    def __init__(self, headers: Any, key: Any) -> None:
        self._headers, self._key = headers, key

    def topic(self) -> str:
        return "t"

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return 7

    def key(self) -> Any:
        return self._key

    def headers(self) -> Any:
        return list(self._headers) if isinstance(self._headers, list) else self._headers

    def error(self) -> None:
        return None


@BUDGET
@given(header_list | anything, st.binary(max_size=600) | st.text(max_size=600) | wrong)
def test_process_span_of_any_clients_record(headers, key):
    """Whatever a record of any client carries (headers, key), its process span opens and
    ends, each refused header is counted at most once (the envelope included, read once by the
    span and `dlq_error`), and the key attribute is bounded text."""
    from tracectx_kafka import dlq_error
    from tracectx_kafka.attributes import MAX_KEY_CHARS
    from tracectx_kafka.consumer import RecordSpan

    for record in (
        Message(headers, key),
        SimpleNamespace(topic="t", partition=0, offset=7, key=key, headers=headers),
    ):
        with Rejections() as counted, bounded():
            scope = RecordSpan(record)
            found = dlq_error(record)
            scope.end()
        assert found is None or isinstance(found, TracedError)
        assert_counted_sanely(counted, most=len(FIELDS) + 2)  # +1 malformed, +1 envelope
        attrs = scope.span.attributes or {}  # type: ignore[attr-defined]
        text = attrs.get("messaging.kafka.message.key")
        assert text is None or len(text) <= MAX_KEY_CHARS


_HEXISH = st.sampled_from(list(b"0123456789abcdefABCDEF- x0"))


@BUDGET
@given(
    st.one_of(
        st.binary(max_size=80),
        # near the usual form: a traceparent with some bytes changed
        st.lists(_HEXISH, min_size=50, max_size=60).map(bytes),
        st.builds(
            lambda t, s, f: b"00-%032x-%016x-%02x" % (t, s, f),
            st.integers(0, 2**128 - 1),
            st.integers(0, 2**64 - 1),
            st.integers(0, 255),
        ),
    )
)
def test_a_lone_traceparent_parsed_without_the_propagator_reads_as_the_propagator(
    value: bytes,
) -> None:
    """The shortcut for a lone ``traceparent`` gives the propagator's context or leaves the
    header to it: never another trace, another parent or other flags."""
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    from tracectx_kafka.headers import _parsed_traceparent

    with bounded():
        ctx = _parsed_traceparent(value)
    if ctx is None:
        return
    read = TraceContextTextMapPropagator().extract({"traceparent": value.decode("ascii")})
    parsed = trace.get_current_span(ctx).get_span_context()
    assert parsed == trace.get_current_span(read).get_span_context()
    assert parsed.trace_flags == trace.get_current_span(read).get_span_context().trace_flags
