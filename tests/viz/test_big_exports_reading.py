"""The fast paths of reading a big export give exactly what the plain ways give: lines cut from
big reads are the file's lines (`reader._Lines`); the typed reader's per-document checks (ids,
times) say yes exactly when the per-value checks do, and its inline loop for usual spans reads
what the tolerant reader reads (tests/fuzz/test_viz_fuzz.py checks the typed reader on any
document; these aim at documents whose ids and times all take the fast path)."""

from __future__ import annotations

import gzip
import io
import json
import re
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracectx.viz.sources import otlp_typed, reader
from tracectx.viz.sources.documents import parse_bytes, trace_ids_of
from tracectx.viz.sources.limits import Limits
from tracectx.viz.sources.otlp_json import parse_otlp

line_bytes = st.lists(
    st.sampled_from([b"a", b"{", b'"', b"\n", b"\r", b"\r\n", b" ", b"\xff", b"xyz" * 5]),
    max_size=40,
).map(b"".join)


def _plain_lines(data: bytes) -> list[tuple[int, bytes]]:
    """What iterating the file gave: its ``\\n`` lines, those with a ``\\r`` split further."""
    out = []
    for number, line in enumerate(io.BytesIO(data), 1):
        out += [(number, part) for part in (line.splitlines() if b"\r" in line else [line])]
    return out


@settings(max_examples=300, deadline=None)
@given(line_bytes, st.integers(1, 9), st.booleans())
def test_lines_cut_from_reads_are_the_files_lines(data, chunk, gzipped):
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(reader, "_CHUNK", chunk)
        raw = io.BytesIO(gzip.compress(data) if gzipped else data)
        lines = reader._Lines(raw, len(raw.getvalue()), "reading", None)
        assert list(lines) == _plain_lines(data)
        assert lines.problem is None


def test_a_gzip_bomb_stops_at_the_cap_with_the_lines_before_it():
    raw = io.BytesIO(gzip.compress(b"abc\ndefg\n" + b"x" * 1000))
    limits = Limits(max_inflated=10, max_ratio=1000, max_document=1000)
    lines = reader._Lines(raw, 0, "reading", None, limits)
    assert list(lines) == [(1, b"abc\n"), (2, b"defg\n")]
    assert lines.problem is not None and "inflates to more than 10 bytes" in lines.problem


def test_progress_reports_add_up_to_what_was_read(monkeypatch):
    monkeypatch.setattr(reader, "_REPORT_EVERY", 10)
    monkeypatch.setattr(reader, "_CHUNK", 7)
    data = b"".join(b"line %d\n" % i for i in range(50))
    calls: list[tuple[Any, ...]] = []
    lines = reader._Lines(io.BytesIO(data), len(data), "reading", lambda *a: calls.append(a))
    assert len(list(lines)) == 50
    assert calls[0] == ("reading", 0, len(data))
    assert 0 < sum(step for _, step, _ in calls[1:]) <= len(data)


# -- the typed reader's fast path ----------------------------------------------------------------

id_chars = st.sampled_from("0123456789abcdefABCFg ٣é\x00")


@settings(max_examples=500, deadline=None)
@given(st.lists(st.text(id_chars, max_size=18) | st.integers() | st.none(), max_size=5))
def test_id_check_of_a_whole_document_is_the_check_of_each(ids):
    each = all(
        isinstance(i, str) and re.fullmatch("[0-9a-f]{16}", i) is not None and i != "0" * 16
        for i in ids
    )
    if otlp_typed._all_plain(ids, 16, "0" * 16):
        assert each
    elif each:  # allowed only for a run of zeros across two ids
        assert "0" * 16 in "".join(ids)


@settings(max_examples=500, deadline=None)
@given(
    st.lists(st.text(st.sampled_from("0129 ٣+-e.\x00"), max_size=21) | st.integers(), max_size=4)
)
def test_time_check_of_a_whole_document_is_the_check_of_each(values):
    each = [
        int(v) if isinstance(v, str) and re.fullmatch("[0-9]{1,19}", v) and int(v) < 2**63 else None
        for v in values
    ]
    assert otlp_typed._plain_times(values) == (None if None in each else each)


hex_id = st.integers(1, 2**64 - 1).map(lambda n: f"{n:016x}")
plain_time = st.integers(0, 2**63 - 1).map(str)
odd = st.none() | st.integers(-5, 5) | st.text(max_size=4) | st.lists(st.integers(), max_size=2)
value = st.one_of(
    st.fixed_dictionaries({"stringValue": st.text(max_size=5) | odd}),
    st.fixed_dictionaries({"intValue": st.integers().map(str) | odd}),
    st.fixed_dictionaries({"boolValue": st.booleans() | odd}),
    # finite: json.dumps writes inf as `Infinity`, which is not JSON (both readers refuse it)
    st.fixed_dictionaries({"doubleValue": st.floats(allow_nan=False, allow_infinity=False) | odd}),
    st.fixed_dictionaries({"arrayValue": st.fixed_dictionaries({"values": st.just([])})}),
    st.just({}),
    st.none(),
)
usual_span = st.fixed_dictionaries(
    {
        "traceId": st.sampled_from(["4bf92f3577b34da6a3ce929d0e0e4736", "1" * 32]),
        "spanId": hex_id,
        "startTimeUnixNano": plain_time,
        "endTimeUnixNano": plain_time,
    },
    optional={
        "parentSpanId": hex_id | st.just(""),
        "name": st.text(max_size=5) | odd,
        "kind": st.integers(0, 6) | st.sampled_from(["SPAN_KIND_SERVER", ""]) | odd,
        "status": st.fixed_dictionaries(
            {}, optional={"code": st.sampled_from([0, 2, "ERROR", True]) | odd, "message": odd}
        ),
        "attributes": st.lists(
            st.fixed_dictionaries(
                {"key": st.sampled_from(["a", "b", "tracectx.error.meta.password"])},
                optional={"value": value},
            ),
            max_size=3,
        ),
        "events": st.lists(st.fixed_dictionaries({"name": st.text(max_size=3)}), max_size=1),
        "links": st.lists(st.fixed_dictionaries({"traceId": hex_id, "spanId": hex_id}), max_size=1),
    },
)
usual_doc = st.lists(
    st.fixed_dictionaries(
        {
            "resource": st.fixed_dictionaries(
                {
                    "attributes": st.lists(
                        st.fixed_dictionaries(
                            {
                                "key": st.just("service.name"),
                                "value": st.fixed_dictionaries(
                                    {"stringValue": st.text(max_size=3)}
                                ),
                            }
                        ),
                        max_size=1,
                    )
                }
            ),
            "scopeSpans": st.lists(
                st.fixed_dictionaries({"spans": st.lists(usual_span, max_size=5)}), max_size=2
            ),
        }
    ),
    max_size=3,
).map(lambda rs: {"resourceSpans": rs})


@settings(max_examples=400, deadline=None)
@given(usual_doc)
def test_usual_spans_read_inline_are_the_tolerant_readers(doc):
    raw = json.dumps(doc).encode()
    typed = otlp_typed.decode_otlp(raw)
    tolerant = parse_otlp(msgspec.json.decode(raw))
    if typed is not None:
        assert typed.spans == tolerant.spans
        assert tolerant.problems == []
    read = parse_bytes(raw)
    assert not isinstance(read, ValueError)
    assert trace_ids_of(raw) == [s.trace_id for s in read.spans]


# -- handing over traces -------------------------------------------------------------------------


class _SpanByStep:
    """The grouper as it was, a Python step a span: what the grouped one must equal."""

    def __init__(self, counts: dict[str, int]) -> None:
        self.left, self.queue = dict(counts), list(counts)
        self.open: dict[str, list[Any]] = {}
        self.released: set[str] = set()
        self.late = 0

    def add(self, spans: list[Any]) -> list[list[Any]]:
        for span in spans:
            if span.trace_id in self.released:
                self.late += 1
                continue
            self.open.setdefault(span.trace_id, []).append(span)
            if span.trace_id in self.left:
                self.left[span.trace_id] -= 1
        done = []
        while self.queue and self.left[self.queue[0]] <= 0:
            trace_id = self.queue.pop(0)
            del self.left[trace_id]
            self.released.add(trace_id)
            if self.open.get(trace_id):
                done.append(self.open.pop(trace_id))
        return done

    def rest(self) -> list[list[Any]]:
        done = [self.open.pop(t) for t in self.queue if self.open.get(t)]
        return done + list(self.open.values())


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.lists(st.sampled_from("abcde"), max_size=8), max_size=6),
    st.dictionaries(st.sampled_from("abcdef"), st.integers(0, 4)),
)
def test_grouped_hand_over_is_the_span_by_span_one(documents, counts):
    from tracectx.viz.model import Span
    from tracectx.viz.sources.traces import _Grouper

    number = iter(range(1, 1000))
    docs = [
        [Span(t * 32, f"{next(number):016x}", None, "s", "svc", 0, 1) for t in d] for d in documents
    ]
    grouped, stepped = _Grouper(counts), _SpanByStep(counts)
    for doc in docs:
        assert list(grouped.add(doc)) == stepped.add(doc)
    assert list(grouped.rest()) == stepped.rest()
    assert grouped.late == stepped.late
