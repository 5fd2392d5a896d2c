"""Span sources. `loads_spans` sniffs the shape: OTLP JSON (file, JSON-lines, Jaeger api_v3
``{"result": ...}``, a bare ``[ResourceSpans]`` array as rotel writes), OTLP protobuf
(``TracesData`` / ``ExportTraceServiceRequest`` bytes), Jaeger v1 JSON (``{"data": [...]}``, a
bare trace, an array of traces or of spans, lines), any of them gzipped. Nothing here raises on
bad input: every problem is listed in the `SpanSet`. `load_spans` reads JSON-lines files line by
line (`reader`); `traces` hands a big export over one trace at a time (`traces`). Gzip is
inflated, and documents held, within `Limits` (`limits`): `FILE_LIMITS` for files and text,
`RECORD_LIMITS` for the stream's records."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from tracectx.viz.model import SpanSet
from tracectx.viz.sources.documents import (
    ACCEPTED_SHAPES,
    MAX_PROBLEMS,
    Progress,
    loads_json,
    parse_bytes,
    parse_document,
)
from tracectx.viz.sources.limits import FILE_LIMITS, RECORD_LIMITS, Limits
from tracectx.viz.sources.otlp_proto import parse_otlp_proto
from tracectx.viz.sources.reader import ProblemSink, file_items, text_items

__all__ = [
    "ACCEPTED_SHAPES",
    "FILE_LIMITS",
    "MAX_PROBLEMS",
    "RECORD_LIMITS",
    "Limits",
    "Progress",
    "load_spans",
    "loads_json",
    "loads_spans",
    "parse_document",
]


def _collect(items: Iterable[SpanSet | str], out: SpanSet, sink: ProblemSink) -> None:
    for item in items:
        if isinstance(item, str):
            sink.add(item)
        else:
            out.spans.extend(item.spans)
            sink.extend(item.problems)


def loads_spans(text: bytes | str, *, limits: Limits | None = None) -> SpanSet:
    """Parse a whole file's text; broken parts become problems, the rest is kept. Gzip input
    is inflated within `limits` (`FILE_LIMITS` and its environment variables by default)."""
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    out = SpanSet()
    sink = ProblemSink(out.problems)
    _collect(text_items(raw, parse_bytes, parse_otlp_proto, limits), out, sink)
    sink.close()
    return out


def load_spans(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    *,
    progress: Progress | None = None,
    limits: Limits | None = None,
) -> SpanSet:
    """Spans from one file or several; an unreadable file is a problem, not an exception.
    Every problem is prefixed with the file it came from. `progress`, when given, hears of
    the bytes read (parsing goes along); `limits` as for `loads_spans`."""
    files = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
    out = SpanSet()
    for path in files:
        sink = ProblemSink(out.problems, f"{os.fspath(path)}: ")
        try:
            items = file_items(Path(path), parse_bytes, parse_otlp_proto, progress, limits=limits)
            _collect(items, out, sink)
        except OSError as exc:
            sink.add(exc.strerror or str(exc))
        sink.close()
    return out
