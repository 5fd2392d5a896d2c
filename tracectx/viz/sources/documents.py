"""One JSON document of any accepted shape → spans: the fast typed path for well-formed OTLP JSON
(`otlp_typed`), else the generic parse and the tolerant readers, which list every problem."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from tracectx.viz.model import SpanSet
from tracectx.viz.sources.fields import SOURCE_SPAN_ID, SOURCE_TRACE_ID, ProblemList, describe
from tracectx.viz.sources.jaeger_json import is_jaeger_span, parse_jaeger
from tracectx.viz.sources.limits import charge
from tracectx.viz.sources.otlp_json import parse_otlp
from tracectx.viz.sources.otlp_typed import decode_otlp, decode_trace_ids

__all__ = [
    "ACCEPTED_SHAPES",
    "MAX_PROBLEMS",
    "Progress",
    "loads_json",
    "parse_bytes",
    "parse_document",
    "trace_ids_of",
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

try:  # orjson (the viz extra) is several times faster on big files
    import orjson

    _loads: Any = orjson.loads
    _DecodeError: tuple[type[Exception], ...] = (orjson.JSONDecodeError, ValueError)
except ImportError:  # pragma: no cover - core install without the viz extra
    _loads = json.loads
    _DecodeError = (ValueError, RecursionError)


try:  # msgspec (the viz extra) checks JSON without building it
    import msgspec

    _check: Any = msgspec.json.Decoder(msgspec.Raw).decode
    _CheckError: tuple[type[Exception], ...] = (msgspec.DecodeError,)
except ImportError:  # pragma: no cover - core install without the viz extra
    _check, _CheckError = None, ()
_CHECK_OVER = 1 << 20  # bytes


def loads_json(data: bytes | str) -> Any:
    """Parse JSON with the fastest parser at hand; `ValueError` for anything unreadable
    (including nesting too deep for the parser). A document over 1 MiB is checked first
    (msgspec, no objects built): orjson's error keeps the whole document as text, about
    twelve times its size in memory for one that is not JSON."""
    if _check is not None and len(data) > _CHECK_OVER:
        try:
            _check(data)
        except _CheckError as exc:
            raise ValueError(str(exc)[:300]) from None
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
        charge(len(doc))
        if any(is_jaeger_span(item) for item in doc):
            return parse_jaeger(doc)
        if depth >= _MAX_ARRAY_DEPTH:
            return SpanSet(problems=[f"arrays nested too deep; accepted: {ACCEPTED_SHAPES}"])
        problems = ProblemList()  # one per item at most, each item's own capped too
        out = SpanSet(problems=problems)
        scalars = [item for item in doc if not isinstance(item, dict | list)]
        for item in doc:
            if isinstance(item, dict | list):
                out.extend(_parse(item, depth + 1))
        if scalars:
            problems.append(
                f"{len(scalars)} array item(s) that are not objects (e.g. {describe(scalars[0])}),"
                f" skipped; accepted: {ACCEPTED_SHAPES}"
            )
        out.problems = problems.closed()
        return out
    return SpanSet(
        problems=[f"unrecognised JSON value {describe(doc)}; accepted: {ACCEPTED_SHAPES}"]
    )


def parse_document(doc: Any) -> SpanSet:
    """Spans from one parsed JSON document of any accepted shape; non-hex ids are noted."""
    return _note_mapped(_parse(doc, 0))


def _note_mapped(out: SpanSet) -> SpanSet:
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


def parse_bytes(raw: bytes) -> SpanSet | ValueError:
    """Spans from one JSON document's bytes (typed decoding when it is well-formed OTLP JSON,
    else the tolerant readers); `ValueError` (returned, not raised) when it is not JSON."""
    typed = decode_otlp(raw)
    if typed is not None:
        return _note_mapped(typed)
    try:
        doc = loads_json(raw)
    except ValueError as exc:
        return exc
    return parse_document(doc)


def trace_ids_of(raw: bytes) -> list[str] | ValueError:
    """The trace id of every span `parse_bytes` keeps from this document, decoding only the ids
    when it is well-formed OTLP JSON; `ValueError` exactly when `parse_bytes` gives one."""
    ids = decode_trace_ids(raw)
    if ids is not None:
        return ids
    parsed = parse_bytes(raw)
    return parsed if isinstance(parsed, ValueError) else [s.trace_id for s in parsed.spans]
