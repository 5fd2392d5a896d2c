"""A big export handed over one complete trace at a time, so only the traces still being read
are in memory, not the whole file's spans.

Two passes over the files. The first counts the spans of every trace, decoding nothing but the
ids (msgspec skips the rest) and in the order traces first appear. The second reads the spans
and hands a trace over as soon as its last span is read and every trace that appeared before it
has been handed over: the same traces, in the same order, as analysing the whole file at once.

Why two passes rather than one: the OTel Collector's file exporter writes spans as they end, so
a file is grouped by batch, not by trace; nothing in one pass says that a trace is complete
before the end of the file (a late span can always follow). Counting first costs a cheap read
and makes the rule exact for any file: grouped by trace, interleaved, or in no order at all.
Memory is then bounded by the traces open at once (for an exporter's file, those that ended
around the same time), not by the file. A trace the first pass did not see complete (the file
grew in between, or was unreadable) is simply handed over at the end.
"""

from __future__ import annotations

import os
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from itertools import groupby
from operator import attrgetter
from pathlib import Path

from tracectx.viz.model import Span
from tracectx.viz.sources.documents import Progress, parse_bytes, trace_ids_of
from tracectx.viz.sources.otlp_proto import parse_otlp_proto
from tracectx.viz.sources.reader import ProblemSink, file_items

__all__ = ["count_spans", "traces"]

PathLike = str | os.PathLike[str]
_TRACE_ID = attrgetter("trace_id")


def _proto_ids(raw: bytes) -> list[str]:
    return [s.trace_id for s in parse_otlp_proto(raw).spans]


def count_spans(paths: Iterable[PathLike], progress: Progress | None = None) -> dict[str, int]:
    """Spans per trace id that reading `paths` will give, in order of first appearance
    (unreadable files are skipped: the reading pass reports them)."""
    counts: Counter[str] = Counter()  # a dict: keys in order of first appearance
    for path in paths:
        try:
            for item in file_items(Path(path), trace_ids_of, _proto_ids, progress, "counting"):
                if isinstance(item, list):
                    counts.update(item)
        except OSError:
            continue
    return counts


class _Grouper:
    """Collects spans per trace; releases traces complete per `counts`, in its order."""

    def __init__(self, counts: dict[str, int]) -> None:
        self._left = dict(counts)
        self._queue = deque(counts)
        self._open: dict[str, list[Span]] = {}
        # Traces already handed on (at most one id per counted trace): a span of one read later
        # (the file grew between the passes) is skipped and counted, not made a second trace.
        self._released: set[str] = set()
        self.late = 0

    def add(self, spans: list[Span]) -> Iterator[list[Span]]:
        """Take one document's spans; yield the traces they complete. The spans go to their
        traces a trace at a time (a stable sort by trace id, then groups, all in C: a
        document holds the spans of a few dozen traces, and a Python step for each span cost
        more than the sort), traces new here opened in order of first appearance."""
        left, open_, released = self._left, self._open, self._released
        for trace_id in dict.fromkeys(map(_TRACE_ID, spans)):
            if trace_id not in open_ and trace_id not in released:
                open_[trace_id] = []
        for trace_id, group in groupby(sorted(spans, key=_TRACE_ID), _TRACE_ID):
            if trace_id in released:
                self.late += sum(1 for _ in group)
                continue
            members = open_[trace_id]
            before = len(members)
            members.extend(group)
            remaining = left.get(trace_id)
            if remaining is not None:
                left[trace_id] = remaining - (len(members) - before)
        queue = self._queue
        while queue and left[queue[0]] <= 0:
            trace_id = queue.popleft()
            del left[trace_id]
            self._released.add(trace_id)
            done = open_.pop(trace_id, None)
            if done:
                yield done

    def rest(self) -> Iterator[list[Span]]:
        """The traces not complete (in order), then any the count did not know."""
        while self._queue:
            done = self._open.pop(self._queue.popleft(), None)
            if done:
                yield done
        yield from self._open.values()
        self._open = {}


def traces(
    paths: Iterable[PathLike],
    counts: dict[str, int],
    problems: list[str],
    progress: Progress | None = None,
) -> Iterator[list[Span]]:
    """The spans of `paths`, one trace (a list of spans) at a time as described above; the
    input's problems go to `problems` (prefixed with their file, capped per file)."""
    grouper = _Grouper(counts)
    for path in paths:
        sink = ProblemSink(problems, f"{os.fspath(path)}: ")
        try:
            items = file_items(Path(path), parse_bytes, parse_otlp_proto, progress, "analysing")
            for item in items:
                if isinstance(item, str):
                    sink.add(item)
                    continue
                sink.extend(item.problems)
                yield from grouper.add(item.spans)
        except OSError as exc:
            sink.add(exc.strerror or str(exc))
        sink.close()
    if grouper.late:
        problems.append(
            f"{grouper.late} span(s) of traces already written were read after them (did the"
            " file grow while it was read?), skipped"
        )
    yield from grouper.rest()
