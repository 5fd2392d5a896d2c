"""Gzip input inflated as a stream within `Limits`: chunks of at most 1 MiB, never more.

Hand-written over `zlib.decompressobj` rather than `gzip.GzipFile` because the limits need
what GzipFile hides: how many compressed bytes were read so far (for the ratio) and output
bounded per step (``max_length``), so a bomb is stopped after one chunk over the limit, not
after a whole buffer. Concatenated members and zero padding after a member are read as gzip
reads them; each member is charged to the active budget (`limits.charge`) as one item. A
broken stream (bad CRC or length, cut short, garbage after a member) ends the chunks with
`problem` set: what was inflated before it was already handed on and is kept.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Callable, Generator, Iterator
from typing import Any

from tracectx.viz.sources.limits import Limits, charge, current_budget

__all__ = ["GZIP_MAGIC", "GzipStream", "inflate_bytes"]

GZIP_MAGIC = b"\x1f\x8b"
_OUT = 1 << 20  # inflated bytes per step at most
_IN = 64 * 1024  # compressed bytes read at a time
_GZIP = 16 + zlib.MAX_WBITS  # zlib's wbits for the gzip wrapper (header and CRC checked)


class GzipStream:
    """The inflated chunks of a gzip stream read with `read`, within `limits`. After the
    iteration `problem` says why it stopped early (None when it read to a clean end) and
    `over_limit` whether that was a limit (then the active budget, if any, is refused too)."""

    def __init__(self, read: Callable[[int], bytes], limits: Limits) -> None:
        self._read, self._limits = read, limits
        self.compressed = self.inflated = 0
        self.problem: str | None = None
        self.over_limit = False

    def _more(self) -> bytes:
        data = self._read(_IN)
        self.compressed += len(data)
        return data

    def _stop(self, problem: str, over_limit: bool = False) -> None:
        self.problem, self.over_limit = problem, over_limit
        budget = current_budget()
        if over_limit and budget is not None and budget.refused is None:
            budget.refused = problem

    def __iter__(self) -> Iterator[bytes]:
        buf = self._more()
        members = 0
        while True:
            if members:  # after a member: zero padding, then the end or another member
                buf = buf.lstrip(b"\0")
                while not buf and (buf := self._more()):
                    buf = buf.lstrip(b"\0")
            while 0 < len(buf) < 2 and (more := self._more()):
                buf += more
            if not buf:
                if not members:
                    self._stop("broken gzip input: empty")
                return
            if buf[:2] != GZIP_MAGIC:
                self._stop("broken gzip input: data after the gzip stream is not gzip, ignored")
                return
            members += 1
            charge(1)  # a record of tiny empty members costs CPU but inflates to nothing
            yield from self._member(buf)
            if self.problem is not None:
                return
            buf = self._rest

    _rest = b""

    def _member(self, buf: bytes) -> Iterator[bytes]:
        """One member's chunks; leaves the bytes after it in `_rest`."""
        inflater = zlib.decompressobj(_GZIP)
        flushing = False
        while True:
            if not buf and not flushing:
                buf = self._more()
                if not buf:
                    self._stop("broken gzip input: ended before the end of the stream")
                    return
            before = inflater.copy()
            try:
                out = inflater.decompress(buf, _OUT)
            except zlib.error as exc:
                # the step's output is lost with the error: redo it a byte at a time, so
                # everything before the broken byte (all the data, for a bad CRC) is kept
                yield from self._up_to_error(before, buf)
                if self.problem is None:
                    self._stop(f"broken gzip input: {exc}")
                return
            flushing = len(out) == _OUT  # zlib may hold more output for this input
            if out and not (yield from self._emit(out)):
                return
            if inflater.eof:
                self._rest = inflater.unused_data
                return
            buf = inflater.unconsumed_tail

    def _emit(self, out: bytes) -> Generator[bytes, None, bool]:
        """Hand on `out`, or the part of it within the limits (then stop): False if stopped."""
        self.inflated += len(out)
        allowed = self._limits.inflatable(self.compressed)
        if self.inflated > allowed:  # what is within the limit is kept
            if (keep := len(out) - (self.inflated - allowed)) > 0:
                yield out[:keep]
            self._stop(self._limits.inflation_problem(self.compressed), over_limit=True)
            return False
        yield out
        return True

    def _up_to_error(self, inflater: Any, buf: bytes) -> Iterator[bytes]:
        for i in range(len(buf)):
            try:
                out = inflater.decompress(buf[i : i + 1])
            except zlib.error:
                return
            if out and not (yield from self._emit(out)):
                return


def inflate_bytes(data: bytes, limits: Limits) -> tuple[bytes, str | None, bool]:
    """Gunzip `data` whole: ``(inflated bytes, problem or None, over a limit)``. What was
    inflated before a problem is returned with it; at most `limits.max_document` bytes (one
    whole input held in memory), or `limits.max_inflated` if smaller."""
    stream = GzipStream(io.BytesIO(data).read, limits)
    cap = min(limits.max_document, limits.max_inflated)
    chunks: list[bytes] = []
    size = 0
    for chunk in stream:
        size += len(chunk)
        if size > cap:
            problem = f"gzip input inflates to more than {cap} bytes held at once (limit)"
            stream._stop(problem, over_limit=True)
            break
        chunks.append(chunk)
    data = b"".join(chunks)
    return data, stream.problem, stream.over_limit
