"""Span sources. `loads_spans` sniffs the shape: OTLP JSON (file, JSON-lines, Jaeger api_v3
``{"result": ...}``) or Jaeger v1 JSON (``{"data": [...]}``, a bare trace, an array, lines)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tracectx.viz.model import SpanSet
from tracectx.viz.sources.jaeger_json import parse_jaeger
from tracectx.viz.sources.otlp_json import parse_otlp

__all__ = ["load_spans", "loads_spans", "parse_document"]

try:  # orjson (the viz extra) is several times faster on big files
    import orjson

    _loads: Any = orjson.loads
    _DecodeError: tuple[type[Exception], ...] = (orjson.JSONDecodeError, ValueError)
except ImportError:  # pragma: no cover - core install without the viz extra
    _loads = json.loads
    _DecodeError = (ValueError,)


def parse_document(doc: Any) -> SpanSet:
    """Spans from one parsed JSON document of any accepted shape."""
    if isinstance(doc, dict):
        if "resourceSpans" in doc:
            return parse_otlp(doc)
        if isinstance(doc.get("result"), dict):
            return parse_otlp(doc["result"])
        if isinstance(doc.get("data"), list):
            return parse_jaeger(doc["data"])
        if "spans" in doc:
            return parse_jaeger([doc])
    if isinstance(doc, list):
        out = SpanSet()
        for item in doc:
            out.extend(parse_document(item))
        return out
    return SpanSet(problems=[f"unrecognised document of type {type(doc).__name__}"])


def _documents(text: bytes) -> Iterable[tuple[int, Any] | tuple[int, str]]:
    try:
        yield 0, _loads(text)
        return
    except _DecodeError as exc:
        whole_error = str(exc)
    lines = text.splitlines()
    if len(lines) <= 1:
        yield 0, f"not JSON: {whole_error}"
        return
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            yield number, _loads(line)
        except _DecodeError as exc:
            yield number, f"line {number}: not JSON ({exc})"


def loads_spans(text: bytes | str) -> SpanSet:
    """Parse a whole file's text; broken parts become problems, the rest is kept."""
    raw = text.encode() if isinstance(text, str) else text
    out = SpanSet()
    for _, doc in _documents(raw):
        if isinstance(doc, str) and doc.startswith(("not JSON", "line ")):
            out.problems.append(doc)
        else:
            out.extend(parse_document(doc))
    return out


def load_spans(paths: Iterable[str | Path]) -> SpanSet:
    """Spans from files; an unreadable file is a problem, not an exception."""
    out = SpanSet()
    for path in paths:
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            out.problems.append(f"{path}: {exc.strerror or exc}")
            continue
        out.extend(loads_spans(data))
    return out
