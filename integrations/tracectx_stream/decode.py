"""Span-topic records to spans: OTLP protobuf (the Collector's and Jaeger v2's default), OTLP
JSON (a ``{"resourceSpans": …}`` document, or rotel's bare ``[ResourceSpans]`` array), and the
re-keyed batches tracectx writes itself. A record that cannot be read is a poison record: the
caller counts and skips it; nothing here raises on bad input. OTLP protobuf is read by the
visualiser's `parse_otlp_proto`, the one protobuf reader.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from typing import Any

from tracectx.viz.model import Link, Span, SpanEvent, SpanSet
from tracectx.viz.sources import loads_spans
from tracectx.viz.sources.otlp_proto import parse_otlp_proto

__all__ = ["FORMATS", "decode_record", "decode_trace_batch", "encode_trace_batch"]

FORMATS = ("otlp_proto", "otlp_json", "auto")
BATCH_VERSION = 1
MAX_RECORD_BYTES = 64 * 1024 * 1024


def decode_record(value: bytes | None, fmt: str = "auto") -> SpanSet:
    """The spans in one record's value; a poison record gives no spans and a problem."""
    if not value:
        return SpanSet(problems=["empty record"])
    if len(value) > MAX_RECORD_BYTES:
        return SpanSet(problems=[f"record of {len(value)} bytes is over {MAX_RECORD_BYTES}"])
    if fmt == "otlp_proto":
        return parse_otlp_proto(value)
    return loads_spans(value)  # sniffs JSON (rotel's bare array too), protobuf, gzip


def encode_trace_batch(spans: Iterable[Span]) -> bytes:
    """Spans of one trace as tracectx's own re-keyed record (JSON of the span model)."""
    return json.dumps(
        {"v": BATCH_VERSION, "spans": [dataclasses.asdict(s) for s in spans]},
        separators=(",", ":"),
        default=str,
    ).encode()


def _span(raw: dict[str, Any]) -> Span:
    events = [SpanEvent(e["name"], dict(e["attributes"])) for e in raw.get("events", [])]
    links = [Link(ln["trace_id"], ln["span_id"]) for ln in raw.get("links", [])]
    fields = {f.name for f in dataclasses.fields(Span)} - {"events", "links"}
    return Span(**{k: v for k, v in raw.items() if k in fields}, events=events, links=links)


def decode_trace_batch(value: bytes | None) -> SpanSet:
    """Read back `encode_trace_batch`; a record that is not one is a problem, not an error."""
    try:
        doc = json.loads(value or b"")
        if not isinstance(doc, dict) or doc.get("v") != BATCH_VERSION:
            raise ValueError("not a tracectx span batch")
        return SpanSet([_span(s) for s in doc["spans"]])
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        return SpanSet(problems=[f"unreadable span batch: {str(exc)[:120]}"])
