"""Span-topic records to spans: OTLP protobuf (the Collector's and Jaeger v2's default), OTLP
JSON (a ``{"resourceSpans": …}`` document, or rotel's bare ``[ResourceSpans]`` array), and the
re-keyed batches tracectx writes itself. A record that cannot be read is a poison record: the
caller counts and skips it; nothing here raises on bad input.

OTLP protobuf is read here with a reader of its own, giving exactly the spans the visualiser's
`parse_otlp_proto` gives, with less Python per span and per attribute (this runs on every span
of the stream): ids and times checked inline, the common value types read without a generic
lookup, empty event and link lists not walked.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from typing import Any

from tracectx.viz.model import Link, Span, SpanEvent, SpanSet
from tracectx.viz.sources import loads_spans
from tracectx.viz.sources.fields import MAX_TIME_NS
from tracectx.viz.sources.otlp_proto import _value

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
        return _parse_proto(value)
    return loads_spans(value)  # sniffs JSON (rotel's bare array too), protobuf, gzip


_KINDS = ("internal", "internal", "server", "client", "producer", "consumer")
_ERROR = 2  # Status.STATUS_CODE_ERROR
_NO_TRACE, _NO_SPAN = bytes(16), bytes(8)


def _parse_proto(data: bytes) -> SpanSet:
    """`parse_otlp_proto`, the same spans and problems, cheaper per span."""
    try:
        from google.protobuf.message import DecodeError
        from opentelemetry.proto.trace.v1.trace_pb2 import TracesData
    except ImportError as exc:
        return SpanSet(problems=[f"OTLP protobuf input needs opentelemetry-proto ({exc.name})"])
    message = TracesData()
    try:
        message.ParseFromString(data)
    except (DecodeError, RecursionError, ValueError) as exc:
        return SpanSet(problems=[f"not OTLP protobuf (TracesData): {str(exc)[:200]}"])
    if not message.resource_spans:
        return SpanSet(problems=["OTLP protobuf input holds no resource spans"])
    return _spans(message)


def _attributes(items: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kv in items:
        value = kv.value
        which = value.WhichOneof("value")
        if which == "string_value":
            out[kv.key] = value.string_value
        elif which == "int_value":
            out[kv.key] = value.int_value
        else:
            out[kv.key] = _value(value)
    return out


def _id(raw: bytes, empty: bytes) -> str | None:
    return raw.hex() if len(raw) == len(empty) and raw != empty else None


def _spans(message: Any) -> SpanSet:
    out = SpanSet()
    append = out.spans.append
    for resource_spans in message.resource_spans:
        resource = _attributes(resource_spans.resource.attributes)
        service = str(resource.get("service.name") or "unknown")
        for scope_spans in resource_spans.scope_spans:
            for raw in scope_spans.spans:
                trace_id, span_id = _id(raw.trace_id, _NO_TRACE), _id(raw.span_id, _NO_SPAN)
                if trace_id is None or span_id is None:
                    out.problems.append(f"span {raw.name[:80]!r}: bad trace or span id, skipped")
                    continue
                parent_id, status, kind = raw.parent_span_id, raw.status, raw.kind
                start, end = raw.start_time_unix_nano, raw.end_time_unix_nano
                events, links = raw.events, raw.links
                append(
                    Span(
                        trace_id=trace_id,
                        span_id=span_id,
                        parent_id=_id(parent_id, _NO_SPAN) if parent_id else None,
                        name=raw.name,
                        service=service,
                        start_ns=start if start < MAX_TIME_NS else MAX_TIME_NS,
                        end_ns=end if end < MAX_TIME_NS else MAX_TIME_NS,
                        error=status.code == _ERROR,
                        status_message=status.message,
                        kind=_KINDS[kind] if 0 <= kind < len(_KINDS) else "internal",
                        attributes=_attributes(raw.attributes),
                        events=[
                            SpanEvent(
                                e.name,
                                _attributes(e.attributes),
                                min(e.time_unix_nano, MAX_TIME_NS) or None,
                            )
                            for e in events
                        ]
                        if events
                        else [],
                        links=[
                            Link(t, sp)
                            for ln in links
                            if (t := _id(ln.trace_id, _NO_TRACE))
                            and (sp := _id(ln.span_id, _NO_SPAN))
                        ]
                        if links
                        else [],
                    )
                )
    return out


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
