"""Span input split into documents, so a big file is never held (nor its parse) all at once.

A JSON-lines file (the OTel Collector file exporter: one ``{"resourceSpans": ...}`` batch per
line) is read line by line, gzipped or not: memory holds one line and what was read from it.
Whatever else (one pretty-printed document, OTLP protobuf, a first line that is not JSON) is
read whole, as `loads_spans` always did. The rules match reading the whole text: the text as one
document when it is JSON, else one document per line; bad lines are listed (the first
`MAX_BAD_LINES`, then a count); no line JSON at all is one "not JSON" problem.

The readers are generic in `parse` (bytes of one document → a result, or a returned
`ValueError` when it is not JSON), so the same splitting serves reading spans and counting them.
Yielded strings are problems.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, TypeVar

from tracectx.viz.sources.documents import MAX_PROBLEMS, Progress
from tracectx.viz.sources.inflate import GZIP_MAGIC, GzipStream, inflate_bytes
from tracectx.viz.sources.limits import Limits, charge, current_budget, file_limits
from tracectx.viz.sources.otlp_proto import looks_like_proto

__all__ = ["MAX_BAD_LINES", "ProblemSink", "file_items", "text_items"]

T = TypeVar("T")
MAX_BAD_LINES = 20
_REPORT_EVERY = 4 << 20  # progress: one report per 4 MB read, not one per line
_CHUNK = 1 << 20  # bytes per read when cutting lines (a bigger read saves little, costs memory)


class ProblemSink:
    """One file's problems into `out`, each prefixed; at most `MAX_PROBLEMS`, then a count."""

    def __init__(self, out: list[str], prefix: str = "") -> None:
        self._out, self._prefix, self._count = out, prefix, 0

    def add(self, problem: str) -> None:
        self._count += 1
        if self._count <= MAX_PROBLEMS:
            self._out.append(self._prefix + problem)

    def extend(self, problems: Iterable[str]) -> None:
        for problem in problems:
            self.add(problem)

    def close(self) -> None:
        """Add the count of problems not listed (if any)."""
        if self._count > MAX_PROBLEMS:
            self._out.append(f"{self._prefix}{self._count - MAX_PROBLEMS} more problems not listed")


def _line_items(
    lines: Iterable[tuple[int, bytes]],
    parse: Callable[[bytes], T | ValueError],
    whole_error: str,
    good: bool = False,
) -> Iterator[T | str]:
    """JSON lines: every non-blank line parsed. Bad lines are held back until a good one shows
    this is JSON lines (`good`: one already did); with no good line at all they are one
    "not JSON: `whole_error`"."""
    held: list[str] = []
    bad = 0
    for number, line in lines:
        charge(1)
        if not line.strip():
            continue
        result = parse(line)
        if isinstance(result, ValueError):
            bad += 1
            if bad <= MAX_BAD_LINES:
                message = f"line {number}: not JSON ({result})"
                if good:
                    yield message
                else:
                    held.append(message)
            continue
        if not good:
            good = True
            yield from held
            held = []
        yield result
    if not good:
        yield f"not JSON: {whole_error}"
    elif bad > MAX_BAD_LINES:
        yield f"{bad - MAX_BAD_LINES} more lines not JSON"


def text_items(
    raw: bytes,
    parse: Callable[[bytes], T | ValueError],
    parse_proto: Callable[[bytes], T],
    limits: Limits | None = None,
) -> Iterator[T | str]:
    """The documents of a whole input held in memory (gzip inflated first, within `limits`).
    A gzip stream that breaks or goes over a limit keeps the documents inflated before it
    (the last, cut-off line dropped) and lists the problem; inside a budget (`limits`) going
    over a limit refuses the whole input instead."""
    limits = limits or file_limits()
    problem = None
    if raw[:2] == GZIP_MAGIC:
        raw, problem, over_limit = inflate_bytes(raw, limits)
        budget = current_budget()
        if over_limit and budget is not None:
            budget.refuse(problem or "over a limit")
        if problem is not None and not looks_like_proto(raw):
            raw = raw[: raw.rfind(b"\n") + 1]  # a line cut off by the break: not kept
    elif len(raw) > limits.max_document:
        yield f"input of {len(raw)} bytes is over the limit of {limits.max_document}, not read"
        return
    if not raw.strip():
        yield problem or "empty input"
        return
    if looks_like_proto(raw):
        yield parse_proto(raw)
    else:
        whole = parse(raw)
        if not isinstance(whole, ValueError):
            yield whole
        else:
            yield from _line_items(enumerate(raw.splitlines(), 1), parse, str(whole))
    if problem is not None:
        yield problem


class _Lines:
    """Numbered lines of a (possibly gzipped) binary file, reporting progress in file bytes;
    a broken or oversized gzip stream ends the lines and leaves its problem in `problem`.

    Lines are cut from 1 MiB reads with ``bytes.find`` rather than by iterating the file:
    ``BufferedReader.readline`` (and gzip's) looks for the newline one byte at a time, which
    cost more than msgspec's whole skip over the same bytes on a Collector export. The lines
    are the same: each keeps its ``\\n``, the last may have none."""

    def __init__(
        self,
        raw: IO[bytes],
        size: int,
        what: str,
        progress: Progress | None,
        limits: Limits | None = None,
    ) -> None:
        self._raw, self._size, self._what, self._progress = raw, size, what, progress
        self._limits = limits or file_limits()
        self.gzipped = raw.read(2) == GZIP_MAGIC
        raw.seek(0)
        self.problem: str | None = None

    def _chunks(self) -> Iterator[bytes]:
        # gzip: one inflate step at a time, so a broken stream loses only its tail
        if self.gzipped:
            stream = GzipStream(self._raw.read, self._limits)
            yield from stream
            self.problem = stream.problem
            return
        while chunk := self._raw.read(_CHUNK):
            yield chunk

    def _raw_lines(self) -> Iterator[bytes]:
        """The file's lines, each with its newline; parts of a line longer than a read are
        joined once (never copied read after read)."""
        parts: list[bytes] = []
        held = 0  # bytes in parts
        cap = self._limits.max_document
        for chunk in self._chunks():
            find = chunk.find
            end = find(b"\n")
            if end < 0:
                parts.append(chunk)
                held += len(chunk)
                if held > cap:
                    self.problem = f"a line longer than {cap} bytes (limit): the rest not read"
                    return
                continue
            start = end + 1
            if parts:
                parts.append(chunk[:start])
                yield b"".join(parts)
                parts = []
            else:
                yield chunk[:start]
            while (end := find(b"\n", start)) >= 0:
                yield chunk[start : end + 1]
                start = end + 1
            held = 0
            if start < len(chunk):
                parts.append(chunk[start:])
                held = len(chunk) - start
        if parts and self.problem is None:
            yield b"".join(parts)

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        inflated = reported = 0
        if self._progress is not None:
            self._progress(self._what, 0, self._size)
        cap = self._limits.max_document
        for number, line in enumerate(self._raw_lines(), 1):
            inflated += len(line)
            if len(line) > cap:  # (a longer line is never joined: see `_raw_lines`)
                self.problem = f"a line longer than {cap} bytes (limit): the rest not read"
                return
            if self._progress is not None:
                done = self._raw.tell() if self.gzipped else inflated
                if done - reported >= _REPORT_EVERY:
                    self._progress(self._what, done - reported, self._size)
                    reported = done
            if b"\r" in line:  # the text reader splits at \r too (bytes.splitlines)
                for part in line.splitlines():
                    yield number, part
                continue
            yield number, line


def file_items(
    path: Path,
    parse: Callable[[bytes], T | ValueError],
    parse_proto: Callable[[bytes], T],
    progress: Progress | None = None,
    what: str = "reading",
    limits: Limits | None = None,
) -> Iterator[T | str]:
    """The documents of the file at `path`, JSON lines streamed (see the module docstring),
    within `limits` (`file_limits()` by default). `OSError` when the file cannot be read;
    `progress` hears of the bytes read."""
    limits = limits or file_limits()
    with path.open("rb") as f:
        size = os.fstat(f.fileno()).st_size
        lines = _Lines(f, size, f"{what} {path.name}", progress, limits)
        numbered = iter(lines)
        first: tuple[int, bytes] | None = None
        for number, line in numbered:
            if number == 1 and line[:1] == b"\n":  # may be protobuf (field 1): read it whole
                break
            if line.strip():
                first = (number, line)
                break
        result = parse(first[1]) if first is not None else None
        if first is None or isinstance(result, ValueError):
            # one document over many lines, protobuf, blank, or the first line is broken
            if lines.problem is not None:
                yield lines.problem
                return
            if not lines.gzipped and size > limits.max_document:
                yield f"input of {size} bytes is over the limit of {limits.max_document}, not read"
                return
            f.seek(0)
            yield from text_items(f.read(), parse, parse_proto, limits)
            return
        assert result is not None
        yield result
        yield from _line_items(numbered, parse, "", good=True)
        if lines.problem is not None:
            yield lines.problem
