"""Every record of every topic the stream reads is hostile: decoding one never raises, never
hangs and holds bounded memory; what is over a limit is refused as a poison record (no spans,
a problem), and re-keyed batches round-trip every span exactly."""

from __future__ import annotations

import dataclasses
import gzip
import json
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fuzz.bounds import BUDGET, bounded
from tests.helpers import Cost
from tests.isolated import own_process
from tests.memory_limit import MiB, address_space_limit
from tests.stream.test_decode import traces
from tracectx.viz.model import Link, Span, SpanEvent, SpanSet
from tracectx.viz.sources import RECORD_LIMITS
from tracectx.viz.sources.fields import MAX_TIME_NS
from tracectx.viz.sources.limits import Limits
from tracectx.viz.sources.otlp_proto import parse_otlp_proto
from tracectx_stream.decode import decode_record, decode_trace_batch, encode_trace_batch

# -- slow records: bounded work, refused as poison -----------------------------------------------


def _refused(out: SpanSet, why: str) -> None:
    assert not out.spans
    assert len(out.problems) == 1 and "record refused" in out.problems[0], out.problems
    assert why in out.problems[0], out.problems


def test_a_63kb_gzip_record_of_json_lines_is_refused_at_once() -> None:
    """The issue's record: 63 KB of gzip that inflates ~1000x into 21M tiny JSON lines took
    ~80 s (each line is parsed on its own, a few µs each). Now the ratio stops it after the
    first 6.4 MB inflated, before any parsing."""
    value = gzip.compress(b"{}\n" * 21_000_000, 9)
    assert len(value) < 70_000
    cost = Cost()
    out = decode_record(value)
    cost.assert_within(5.0)
    _refused(out, "100 times its")


def test_a_record_of_many_small_documents_is_refused_after_its_item_budget() -> None:
    limits = dataclasses.replace(RECORD_LIMITS, max_items=10_000)
    out = decode_record(b"1\n" * 50_000, limits=limits)
    _refused(out, "10000 items")
    wide = json.dumps([{"spans": []}] * 50_000).encode()  # one document, 50k entries
    _refused(decode_record(wide, limits=limits), "10000 items")


def test_the_default_item_budget_bounds_a_plain_record_of_tiny_lines() -> None:
    """3M lines: over the 1M items a record may cost (old code parsed every one, µs each)."""
    cost = Cost()
    out = decode_record(b"1\n" * 3_000_000)
    cost.assert_within(10.0)
    _refused(out, f"{RECORD_LIMITS.max_items} items")


def test_a_record_over_its_cpu_budget_is_refused() -> None:
    limits = dataclasses.replace(RECORD_LIMITS, max_seconds=0.01, max_items=None)
    lines = b"".join(
        json.dumps({"spanID": f"{i:x}", "traceID": "1", "tags": [1] * 50}).encode() + b"\n"
        for i in range(20_000)
    )  # ~1 s of the tolerant Jaeger reader
    _refused(decode_record(lines, limits=limits), "CPU seconds")


def test_a_broken_protobuf_record_of_many_parts_is_refused_after_its_item_budget() -> None:
    """The protobuf salvage walk (for batches upb refuses) counts the fields it walks."""
    from tests.viz.test_input_limits import _ld

    data = _ld(1, _ld(2, b"")) * 300_000 + b"\x0a\x05abc"  # broken at the very end
    limits = dataclasses.replace(RECORD_LIMITS, max_items=10_000)
    _refused(decode_record(data, "otlp_proto", limits=limits), "10000 items")


def test_a_record_within_the_limits_is_read_in_full() -> None:
    span = {"traceId": "01" * 16, "spanId": "02" * 8, "name": "op"}
    doc = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [span] * 1000}]}]})
    out = decode_record(gzip.compress(doc.encode()))
    assert len(out.spans) == 1000 and not out.problems


# -- re-keyed batches ----------------------------------------------------------------------------


def test_v2_round_trips_every_field_and_v1_is_still_read() -> None:
    event = SpanEvent("exception", {"n": 1.5, "inf": float("inf")}, 123, {"n": "float64"})
    span = Span(
        "01" * 16,
        "02" * 8,
        "03" * 8,
        "op",
        "svc",
        5,
        MAX_TIME_NS,
        True,
        "boom",
        "server",
        {"a": [1, {"b": None}], "big": 2**64 - 1},
        [event],
        [Link("04" * 16, "05" * 8, "FOLLOWS_FROM")],
        resource_attributes={"service.name": "svc"},
        attribute_types={"a": "string"},
        warnings=["w"],
        flags=1,
    )
    plain = Span("01" * 16, "06" * 8, None, "child", "svc", 6, 7)
    assert decode_trace_batch(encode_trace_batch([span, plain])) == SpanSet([span, plain])
    v1 = json.dumps(
        {"v": 1, "spans": [dataclasses.asdict(s) for s in (span, plain)]}, default=str
    ).encode()
    assert decode_trace_batch(v1) == SpanSet([span, plain])


def test_bound_secrets_in_a_batch_are_masked_as_the_model_masks_them() -> None:
    meta = {"tracectx.error.meta.password": "hunter2"}
    span = Span("01" * 16, "02" * 8, None, "op", "svc", 1, 2, attributes=dict(meta))
    forged = msgspec.msgpack.decode(encode_trace_batch([span]))
    forged["attributes"] = [dict(meta)]
    forged["resource_attributes"] = [dict(meta)]
    [read] = decode_trace_batch(msgspec.msgpack.encode(forged)).spans
    assert "hunter2" not in repr(read)


@pytest.mark.parametrize(
    "doc",
    [
        {"v": 1, "spans": [[]]},  # old code: AttributeError out of decode_trace_batch
        {"v": 1, "spans": [{"trace_id": "01" * 16, "span_id": "02" * 8, "start_ns": "x"}]},
        {"v": 1, "spans": [{"trace_id": "zz", "span_id": "02" * 8, "parent_id": None}]},
        {"v": 1, "spans": "no"},
        {"v": 3},
        [1, 2],
    ],
)
def test_a_batch_of_the_wrong_shape_is_a_poison_record(doc: Any) -> None:
    out = decode_trace_batch(json.dumps(doc).encode())
    assert not out.spans and out.problems
    assert "unreadable span batch" in out.problems[0]


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("trace_id", "0A" * 16),
        ("span_id", "02" * 7),
        ("parent_id", "zz" * 8),
        ("span_id", "é" * 16),
    ],
)
def test_ids_that_are_not_lowercase_hex_are_a_poison_record(column: str, value: str) -> None:
    doc = msgspec.msgpack.decode(
        encode_trace_batch([Span("01" * 16, "02" * 8, "03" * 8, "a", "s", 1, 2)])
    )
    doc[column] = [value]
    out = decode_trace_batch(msgspec.msgpack.encode(doc))
    assert not out.spans and "not lowercase hex" in out.problems[0]


def test_columns_of_different_lengths_are_a_poison_record() -> None:
    doc = msgspec.msgpack.decode(
        encode_trace_batch([Span("01" * 16, "02" * 8, None, "a", "s", 1, 2)])
    )
    doc["name"].append("extra")
    out = decode_trace_batch(msgspec.msgpack.encode(doc))
    assert not out.spans and "different lengths" in out.problems[0]


# -- property tests: nothing raises, bounded time and memory -------------------------------------


def _values(ints: st.SearchStrategy[int]) -> st.SearchStrategy[Any]:
    return st.recursive(
        st.none()
        | st.booleans()
        | ints
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(max_size=20),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner),
        max_leaves=30,
    )


json_values = _values(st.integers())
msgpack_values = _values(st.integers(-(2**63), 2**64 - 1))  # what msgpack can hold
span_fields = st.fixed_dictionaries(
    {},
    optional={
        name: json_values | st.just(good)
        for name, good in {
            "trace_id": "01" * 16,
            "span_id": "02" * 8,
            "parent_id": None,
            "name": "op",
            "service": "svc",
            "start_ns": 1,
            "end_ns": 2,
            "attributes": {},
            "events": [{"name": "e", "attributes": {}}],
            "links": [],
        }.items()
    },
)


def _well_typed(out: SpanSet) -> None:
    """What the stages downstream rely on: each field of its type, ids hex, times in range."""
    assert not any("(" in p and "Error)" in p for p in out.problems), out.problems
    for span in out.spans:
        assert len(span.trace_id) == 32 and int(span.trace_id, 16) >= 0
        assert len(span.span_id) == 16 and int(span.span_id, 16) >= 0
        assert span.parent_id is None or len(span.parent_id) == 16
        assert isinstance(span.name, str) and isinstance(span.service, str)
        assert 0 <= span.start_ns <= MAX_TIME_NS and 0 <= span.end_ns <= MAX_TIME_NS
        assert isinstance(span.error, bool) and isinstance(span.attributes, dict)
        assert all(isinstance(e, SpanEvent) and isinstance(e.name, str) for e in span.events)


@own_process
@BUDGET
@given(st.lists(span_fields, max_size=4), st.sampled_from([1, 2]))
def test_any_v1_batch_is_spans_of_the_right_types_or_a_problem(spans: Any, version: int) -> None:
    value = json.dumps({"v": version, "spans": spans}).encode()
    with address_space_limit(512 * MiB), bounded(1.0, 16 * MiB):
        _well_typed(decode_trace_batch(value))


@own_process
@BUDGET
@given(msgpack_values, st.booleans())
def test_any_value_as_a_batch_is_a_problem_or_spans(doc: Any, as_msgpack: bool) -> None:
    value = msgspec.msgpack.encode(doc) if as_msgpack else json.dumps(doc).encode()
    with address_space_limit(512 * MiB), bounded(1.0, 16 * MiB):
        out = decode_trace_batch(value)
    assert not out.spans or doc  # no spans out of nothing
    _well_typed(out) if out.spans else None


@own_process
@BUDGET
@given(
    st.data(),
    st.sampled_from(
        ["trace_id", "span_id", "parent_id", "start_ns", "attributes", "events", "links", "flags"]
    ),
)
def test_a_v2_batch_with_any_column_replaced_never_raises(data: Any, column: str) -> None:
    spans = [Span("01" * 16, f"{i + 1:016x}", None, "op", "svc", 1, 2) for i in range(3)]
    doc = msgspec.msgpack.decode(encode_trace_batch(spans))
    doc[column] = data.draw(msgpack_values | st.lists(msgpack_values, min_size=3, max_size=3))
    with address_space_limit(512 * MiB), bounded(1.0, 16 * MiB):
        out = decode_trace_batch(msgspec.msgpack.encode(doc))
    if out.spans:
        _well_typed(out)


@own_process
@BUDGET
@given(st.binary(max_size=2000))
def test_any_bytes_as_a_batch_or_record_never_raise(value: bytes) -> None:
    with address_space_limit(512 * MiB), bounded(1.0, 16 * MiB):
        for out in (
            decode_trace_batch(value),
            decode_record(value),
            decode_record(value, "otlp_proto"),
        ):
            assert out.spans or out.problems
            assert not any("Error)" in p for p in out.problems), out.problems


@own_process
@settings(BUDGET, max_examples=100)
@given(traces)
def test_proto_records_round_trip_through_the_rekey_format(data: bytes) -> None:
    spans = parse_otlp_proto(data).spans
    with address_space_limit(512 * MiB), bounded(1.0, 32 * MiB):
        again = decode_trace_batch(encode_trace_batch(spans))
    assert again == SpanSet(spans)


@own_process
@settings(BUDGET, max_examples=100)
@given(traces, st.integers(0, 10_000), st.binary(max_size=8), st.booleans())
def test_compressed_and_broken_proto_records_are_read_within_bounds(
    data: bytes, cut: int, noise: bytes, zipped: bool
) -> None:
    """Protobuf records, whole, cut short or with bytes flipped, gzipped or not: spans or
    problems, never an exception, within a real address-space limit."""
    broken = data[: cut % (len(data) + 1)] + noise + data[cut % (len(data) + 1) + len(noise) :]
    for value in (data, broken):
        value = gzip.compress(value) if zipped else value
        with address_space_limit(512 * MiB), bounded(1.0, 32 * MiB):
            out = decode_record(value)
        assert not any("Error)" in p for p in out.problems), out.problems


@own_process
@settings(BUDGET, max_examples=100)
@given(json_values, st.integers(1, 1000), st.booleans())
def test_gzip_bombs_and_json_of_any_shape_are_read_within_bounds(
    doc: Any, repeat: int, bomb: bool
) -> None:
    body = (json.dumps(doc) + "\n").encode() * repeat
    value = gzip.compress(body + (bytes(4 * MiB) if bomb else b""))
    with address_space_limit(512 * MiB), bounded(2.0, 64 * MiB):
        out = decode_record(value, limits=dataclasses.replace(RECORD_LIMITS, max_seconds=1.0))
    assert not any("Error)" in p for p in out.problems), out.problems


def test_limits_are_validated_like_the_documented_defaults() -> None:
    assert (
        Limits(
            max_inflated=64 * MiB,
            max_ratio=100,
            max_document=64 * MiB,
            max_items=1_000_000,
            max_seconds=5.0,
        )
        == RECORD_LIMITS
    )
