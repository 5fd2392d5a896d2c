"""OTLP protobuf (`TracesData` or `ExportTraceServiceRequest` bytes) and gzip input.

The OTel Collector's and rotel's Kafka and file exporters write ``otlp_proto``: the binary
encoding of ``ExportTraceServiceRequest``, which is the same on the wire as ``TracesData``
(field 1, repeated ``ResourceSpans``). It is decoded with `opentelemetry-proto` and turned into
the OTLP JSON shape, so it is read by exactly the same code as OTLP JSON (`parse_otlp`): one
reader, one set of problems. Gzip input is inflated with a size cap first (a small gzip file can
inflate to gigabytes).
"""

from __future__ import annotations

import gzip
import io
import zlib
from typing import Any

from tracectx.viz.model import SpanSet

__all__ = ["GZIP_MAGIC", "MAX_INFLATED_BYTES", "inflate", "looks_like_proto", "parse_otlp_proto"]

GZIP_MAGIC = b"\x1f\x8b"
MAX_INFLATED_BYTES = 4 * 1024**3


def inflate(data: bytes, limit: int = MAX_INFLATED_BYTES) -> bytes:
    """Gunzip `data` (concatenated members too); `ValueError` if broken or over `limit` bytes."""
    out = io.BytesIO()
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as stream:
            while chunk := stream.read(1 << 20):
                out.write(chunk)
                if out.tell() > limit:
                    raise ValueError(f"gzip input inflates to more than {limit} bytes")
    except (OSError, EOFError, zlib.error) as exc:
        raise ValueError(f"broken gzip input: {exc}") from None
    return out.getvalue()


def looks_like_proto(data: bytes) -> bool:
    """True if `data` starts like an encoded ``TracesData``: field 1, wire type 2 (0x0a)."""
    return data[:1] == b"\x0a"


def parse_otlp_proto(data: bytes) -> SpanSet:
    """Spans of an encoded ``TracesData``/``ExportTraceServiceRequest``; problems, never raises."""
    try:
        from google.protobuf.json_format import MessageToDict
        from google.protobuf.message import DecodeError
        from opentelemetry.proto.trace.v1.trace_pb2 import TracesData
    except ImportError as exc:
        return SpanSet(problems=[f"OTLP protobuf input needs opentelemetry-proto ({exc.name})"])
    message = TracesData()
    try:
        message.ParseFromString(data)
    except (DecodeError, RecursionError, ValueError) as exc:
        return SpanSet(problems=[f"not OTLP protobuf (TracesData): {exc}"])
    if not message.resource_spans:
        return SpanSet(problems=["OTLP protobuf input holds no resource spans"])
    from tracectx.viz.sources.otlp_json import parse_otlp

    doc: dict[str, Any] = MessageToDict(message)
    return parse_otlp(doc)
