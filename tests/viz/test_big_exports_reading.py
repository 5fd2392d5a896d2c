"""The fast paths of reading a big export give exactly what the plain ways give: lines cut from
big reads are the file's lines (`reader._Lines`)."""

from __future__ import annotations

import gzip
import io
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracectx.viz.sources import reader

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


def test_a_gzip_bomb_stops_at_the_cap_with_the_lines_before_it(monkeypatch):
    monkeypatch.setattr(reader, "_CHUNK", 4)
    monkeypatch.setattr(reader, "MAX_INFLATED_BYTES", 10)
    raw = io.BytesIO(gzip.compress(b"abc\ndefg\n" + b"x" * 1000))
    lines = reader._Lines(raw, 0, "reading", None)
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
