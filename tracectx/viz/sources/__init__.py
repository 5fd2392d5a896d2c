"""Span sources. `loads_spans` sniffs the shape: OTLP JSON (file, JSON-lines, Jaeger api_v3
``{"result": ...}``, a bare ``[ResourceSpans]`` array as rotel writes), OTLP protobuf
(``TracesData`` / ``ExportTraceServiceRequest`` bytes), Jaeger v1 JSON (``{"data": [...]}``, a
bare trace, an array of traces or of spans, lines), any of them gzipped. Nothing here raises on
bad input: every problem is listed in the `SpanSet`."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from tracectx.viz.model import SpanSet
from tracectx.viz.sources.fields import SOURCE_SPAN_ID, SOURCE_TRACE_ID, describe
from tracectx.viz.sources.jaeger_json import is_jaeger_span, parse_jaeger
from tracectx.viz.sources.otlp_json import parse_otlp
from tracectx.viz.sources.otlp_proto import GZIP_MAGIC, inflate, looks_like_proto, parse_otlp_proto

__all__ = [
    "ACCEPTED_SHAPES",
    "MAX_PROBLEMS",
    "Progress",
    "load_spans",
    "loads_json",
    "loads_spans",
    "parse_document",
]

ACCEPTED_SHAPES = (
    'OTLP JSON {"resourceSpans": [...]} or a bare [ResourceSpans] array, OTLP protobuf '
    "(TracesData / ExportTraceServiceRequest), "
    'Jaeger api_v3 {"result": {"resourceSpans": [...]}}, '
    'Jaeger v1 {"data": [traces]}, one Jaeger trace {"spans": [...], "processes": {...}}, '
    "an array of those or of Jaeger spans, or one such document per line (JSON lines)"
)
Progress = Callable[[str, int, int | None], None]
"""``(what, step, total)``: ``step == 0`` starts the stage `what` (a bar of `total` units when
given), a positive `step` advances it by that much."""

MAX_PROBLEMS = 200  # per file: a hostile file cannot flood the report
_MAX_ARRAY_DEPTH = 2  # [[trace, ...], ...] at most: deeper arrays are no accepted shape
_MAX_BAD_LINES = 20

try:  # orjson (the viz extra) is several times faster on big files
    import orjson

    _loads: Any = orjson.loads
    _DecodeError: tuple[type[Exception], ...] = (orjson.JSONDecodeError, ValueError)
except ImportError:  # pragma: no cover - core install without the viz extra
    _loads = json.loads
    _DecodeError = (ValueError, RecursionError)


def loads_json(data: bytes | str) -> Any:
    """Parse JSON with the fastest parser at hand; `ValueError` for anything unreadable
    (including nesting too deep for the parser)."""
    try:
        return _loads(data)
    except _DecodeError as exc:
        raise ValueError(str(exc)[:300]) from None
    except RecursionError:  # pragma: no cover - stdlib json on deep nesting
        raise ValueError("nested too deep") from None


def _jaeger_errors(doc: dict[str, Any], out: SpanSet) -> None:
    """Jaeger's own error reports: v1 ``{"errors": [{"code", "msg"}]}``, api_v3 ``{"error"}``."""
    errors = doc.get("errors")
    for err in errors if isinstance(errors, list) else []:
        detail = err.get("msg") if isinstance(err, dict) else err
        out.problems.append(f"Jaeger reported an error: {describe(detail)}")
    error = doc.get("error")
    if isinstance(error, dict):
        out.problems.append(f"Jaeger reported an error: {describe(error.get('message'))}")


def _parse(doc: Any, depth: int) -> SpanSet:
    if isinstance(doc, dict):
        out = SpanSet()
        _jaeger_errors(doc, out)
        if "resourceSpans" in doc:
            out.extend(parse_otlp(doc))
        elif "scopeSpans" in doc:  # one ResourceSpans: an item of rotel's bare array
            out.extend(parse_otlp({"resourceSpans": [doc]}))
        elif isinstance(doc.get("result"), dict):
            out.extend(parse_otlp(doc["result"]))
        elif isinstance(doc.get("data"), list):
            out.extend(parse_jaeger(doc["data"]))
        elif "spans" in doc or is_jaeger_span(doc):
            out.extend(parse_jaeger([doc]))
        elif not out.problems:  # not an error report from Jaeger either
            keys = ", ".join(describe(k) for k in list(doc)[:5])
            out.problems.append(
                f"unrecognised JSON object (keys: {keys or 'none'}); accepted: {ACCEPTED_SHAPES}"
            )
        return out
    if isinstance(doc, list):
        if any(is_jaeger_span(item) for item in doc):
            return parse_jaeger(doc)
        if depth >= _MAX_ARRAY_DEPTH:
            return SpanSet(problems=[f"arrays nested too deep; accepted: {ACCEPTED_SHAPES}"])
        out = SpanSet()
        scalars = [item for item in doc if not isinstance(item, dict | list)]
        for item in doc:
            if isinstance(item, dict | list):
                out.extend(_parse(item, depth + 1))
        if scalars:
            out.problems.append(
                f"{len(scalars)} array item(s) that are not objects (e.g. {describe(scalars[0])}),"
                f" skipped; accepted: {ACCEPTED_SHAPES}"
            )
        return out
    return SpanSet(
        problems=[f"unrecognised JSON value {describe(doc)}; accepted: {ACCEPTED_SHAPES}"]
    )


def parse_document(doc: Any) -> SpanSet:
    """Spans from one parsed JSON document of any accepted shape; non-hex ids are noted."""
    out = _parse(doc, 0)
    mapped = [
        s.attributes.get(SOURCE_TRACE_ID, s.attributes.get(SOURCE_SPAN_ID))
        for s in out.spans
        if SOURCE_TRACE_ID in s.attributes or SOURCE_SPAN_ID in s.attributes
    ]
    if mapped:
        out.problems.append(
            f"{len(mapped)} span(s) with ids that are not hex (e.g. {describe(mapped[0])}): "
            f"mapped to stable hex ids, originals kept in {SOURCE_TRACE_ID} / {SOURCE_SPAN_ID}"
        )
    return out


def _documents(text: bytes) -> Iterator[Any | ValueError]:
    """The whole text as one document, else one per line; unreadable parts as `ValueError`."""
    try:
        yield loads_json(text)
        return
    except ValueError as exc:
        whole_error = exc
    lines = [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    parsed: list[tuple[int, Any | ValueError]] = []
    for number, line in lines:
        try:
            parsed.append((number, loads_json(line)))
        except ValueError as exc:
            parsed.append((number, exc))
    bad = [n for n, doc in parsed if isinstance(doc, ValueError)]
    if len(bad) == len(parsed):  # no line is JSON: one document, broken (truncated, garbage)
        yield ValueError(f"not JSON: {whole_error}")
        return
    for number, doc in parsed:
        if not isinstance(doc, ValueError):
            yield doc
        elif number in bad[:_MAX_BAD_LINES]:
            yield ValueError(f"line {number}: not JSON ({doc})")
    if len(bad) > _MAX_BAD_LINES:
        yield ValueError(f"{len(bad) - _MAX_BAD_LINES} more lines not JSON")


def _capped(problems: list[str]) -> list[str]:
    if len(problems) <= MAX_PROBLEMS:
        return problems
    return [*problems[:MAX_PROBLEMS], f"{len(problems) - MAX_PROBLEMS} more problems not listed"]


def loads_spans(text: bytes | str) -> SpanSet:
    """Parse a whole file's text; broken parts become problems, the rest is kept."""
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    if raw[:2] == GZIP_MAGIC:
        try:
            raw = inflate(raw)
        except ValueError as exc:
            return SpanSet(problems=[str(exc)])
    if not raw.strip():
        return SpanSet(problems=["empty input"])
    if looks_like_proto(raw):
        return parse_otlp_proto(raw)
    out = SpanSet()
    for doc in _documents(raw):
        if isinstance(doc, ValueError):
            out.problems.append(str(doc))
        else:
            out.extend(parse_document(doc))
    out.problems = _capped(out.problems)
    return out


_CHUNK = 8 << 20


def _read(path: Path, progress: Progress | None) -> bytes:
    if progress is None:
        return path.read_bytes()
    with path.open("rb") as f:
        size = os.fstat(f.fileno()).st_size
        progress(f"reading {path.name}", 0, size)
        parts = []
        while chunk := f.read(_CHUNK):
            parts.append(chunk)
            progress(f"reading {path.name}", len(chunk), size)
    return b"".join(parts)


def load_spans(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    *,
    progress: Progress | None = None,
) -> SpanSet:
    """Spans from one file or several; an unreadable file is a problem, not an exception.
    Every problem is prefixed with the file it came from. `progress`, when given, hears of
    each stage (reading with a byte count, then parsing)."""
    files = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
    out = SpanSet()
    for path in files:
        try:
            data = _read(Path(path), progress)
        except OSError as exc:
            out.problems.append(f"{os.fspath(path)}: {exc.strerror or exc}")
            continue
        if progress is not None:
            progress(f"parsing {Path(path).name} ({len(data) / 1e6:,.0f} MB)", 0, None)
        loaded = loads_spans(data)
        out.spans.extend(loaded.spans)
        out.problems.extend(f"{os.fspath(path)}: {p}" for p in loaded.problems)
    return out
