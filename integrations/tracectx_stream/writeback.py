"""Error paths written back over OTLP as small traces: propagation graphs inside Jaeger.

Each path becomes its own trace from service ``tracectx``: one span per hop — origin (the root,
status ERROR, carrying the error's kind, code, id and redacted metadata), each propagator, then
the absorber, or an ``escaped``/``unobserved`` tail (status ERROR) — each the child of the hop
before, so Jaeger's trace view and trace graph draw the path as a chain. Every hop span is
linked to the original span (Jaeger: one click to the original trace) and has the original
span's start and end times.

Idempotent: the trace id is derived from the path key and each span id from the key and the
hop, with the same times every time, so a path written again (a re-delivery, a restart, a
rebalance) writes the same spans; stores keyed by trace and span id (Jaeger's Badger, Cassandra)
keep one copy. Spans are built as `ReadableSpan`s, because the SDK's tracer would draw random
ids, and exported by `settle()` itself, in chunks, before the stream commits: not by the SDK's
batch processor, whose queue drops the oldest spans silently when full and whose flush has no
deadline. An export that failed (after the exporter's own retries) or was not reached within
`SETTLE_S` is counted and its traces reported, so the stream re-reads them.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Hashable
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags

from tracectx import semconv as sc
from tracectx.recording import meta_attributes

__all__ = ["PathWriter", "path_span_ids"]

_log = logging.getLogger("tracectx.stream")
SERVICE = "tracectx"
ATTR_SOURCE_TRACE = "tracectx.source.trace_id"
ATTR_SOURCE_SPAN = "tracectx.source.span_id"
ATTR_OUTCOME = "tracectx.error.outcome"
_SCOPE = InstrumentationScope("tracectx.stream")
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
SETTLE_S = 20.0  # export time one settle() may take (the consumer must poll within 30 s)
CHUNK = 512  # spans per export request


def _digest(text: str, size: int) -> int:
    value = int.from_bytes(hashlib.sha256(text.encode()).digest()[:size], "big")
    return value or 1  # 0 is the invalid id


def path_span_ids(key: str, hops: int) -> tuple[int, list[int]]:
    """The written-back trace id of path `key`, and the span id of each of its `hops`."""
    return _digest(f"tracectx.path/{key}", 16), [
        _digest(f"tracectx.path/{key}/{i}", 8) for i in range(hops)
    ]


def _link(trace_id: str, span_id: str) -> list[Link]:
    try:
        ctx = SpanContext(int(trace_id, 16), int(span_id, 16), is_remote=True, trace_flags=_SAMPLED)
    except (ValueError, TypeError):
        return []
    return (
        [Link(ctx, {ATTR_SOURCE_TRACE: trace_id, ATTR_SOURCE_SPAN: span_id})]
        if ctx.is_valid
        else []
    )


def _ns(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


class PathWriter:
    """A path handler for `SpanStream` that exports each path as a trace."""

    def __init__(self, exporter: SpanExporter) -> None:
        self.resource = Resource.create({"service.name": SERVICE})
        self.exporter = exporter
        self.stats: Any = None  # the stream's StreamStats: writeback_errors
        self._lock = threading.Lock()
        self._pending: list[ReadableSpan] = []

    @classmethod
    def over_http(cls, endpoint: str) -> PathWriter:
        """Export with OTLP/HTTP to `endpoint` (e.g. ``http://jaeger:4318``)."""
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return cls(OTLPSpanExporter(endpoint.rstrip("/") + "/v1/traces"))

    def __call__(self, record: dict[str, Any]) -> None:
        spans = self.spans(record)
        with self._lock:
            self._pending += spans

    def spans(self, record: dict[str, Any]) -> list[ReadableSpan]:
        """The spans `record` is written back as (the same ones every time)."""
        hops: list[tuple[str, dict[str, Any]]] = [("origin", record["origin"])]
        hops += [("propagated", h) for h in record["propagators"]]
        if record["absorber"]:
            hops.append(("absorbed", record["absorber"]))
        tail = record["outcome"] != "absorbed"  # escaped, or unobserved (fire-and-forget)
        starts = [t for _, h in hops if (t := _ns(h.get("start_ns")))]
        ends = [t for _, h in hops if (t := _ns(h.get("end_ns")))]
        if not starts:
            return []  # no span of the path was seen: nothing to draw on a time axis
        first, last = min(starts), max([*ends, *starts])
        trace_id, span_ids = path_span_ids(str(record["key"]), len(hops) + tail)
        common: dict[str, Any] = {
            sc.ATTR_KIND: record["kind"],
            sc.ATTR_CODE: record["code"] or "",
            sc.ATTR_ID: record["error_id"] or "",
            sc.ATTR_ERROR_TYPE: record["type"] or "",
            ATTR_OUTCOME: record["outcome"],
            ATTR_SOURCE_TRACE: record["trace_id"],
        }
        error = Status(StatusCode.ERROR, f"{record['kind']} {record['code'] or ''}".strip())
        out: list[ReadableSpan] = []
        parent: SpanContext | None = None
        previous = first
        for i, (role, hop) in enumerate(hops):
            ctx = SpanContext(trace_id, span_ids[i], is_remote=False, trace_flags=_SAMPLED)
            start = _ns(hop.get("start_ns")) or previous
            end = max(_ns(hop.get("end_ns")) or start, start)
            attributes = {
                **common,
                sc.ATTR_ROLE: role,
                ATTR_SOURCE_SPAN: hop["span_id"],
                "service.name.original": hop.get("service", ""),
            }
            if role == "origin":
                attributes.update(meta_attributes(record["metadata"]))
                attributes["exception.message"] = record["message"] or ""
                attributes["tracectx.error.exact"] = bool(record["exact"])
            out.append(
                ReadableSpan(
                    f"{role}: {hop.get('service', '?')} {hop.get('name', hop['span_id'])}",
                    context=ctx,
                    parent=parent,
                    resource=self.resource,
                    attributes=attributes,
                    links=_link(record["trace_id"], hop["span_id"]),
                    kind=SpanKind.INTERNAL,
                    status=error if role == "origin" else Status(StatusCode.UNSET),
                    start_time=start,
                    end_time=end,
                    instrumentation_scope=_SCOPE,
                )
            )
            parent, previous = ctx, start
        if tail:
            ctx = SpanContext(trace_id, span_ids[-1], is_remote=False, trace_flags=_SAMPLED)
            out.append(
                ReadableSpan(
                    "escaped" if record["outcome"] == "escaped" else "unobserved",
                    context=ctx,
                    parent=parent,
                    resource=self.resource,
                    attributes=common,
                    kind=SpanKind.INTERNAL,
                    status=error,
                    start_time=last,
                    end_time=last,
                    instrumentation_scope=_SCOPE,
                )
            )
        return out

    def settle(self, beat: Callable[[], None] | None = None) -> set[Hashable]:
        """Export what was written since the last call, for at most `SETTLE_S` (calling `beat`
        between requests); the source traces whose spans were not exported."""
        with self._lock:
            pending, self._pending = self._pending, []
        deadline = time.monotonic() + SETTLE_S
        failed: set[Hashable] = set()
        for start in range(0, len(pending), CHUNK):
            chunk = pending[start : start + CHUNK]
            exported = False
            if time.monotonic() < deadline:
                try:
                    exported = self.exporter.export(chunk) is SpanExportResult.SUCCESS
                except Exception:
                    _log.warning("tracectx stream: write-back export raised", exc_info=True)
            if not exported:
                failed |= {(s.attributes or {}).get(ATTR_SOURCE_TRACE) for s in chunk}
                if self.stats is not None:
                    self.stats.writeback_errors += 1
            if beat is not None:
                beat()
        return {t for t in failed if isinstance(t, str)}

    def shutdown(self) -> None:
        """Export what is left, then shut the exporter down (an HTTP exporter's session closed)."""
        self.settle()
        self.exporter.shutdown()

    def close_output(self, timeout_s: float) -> None:
        """Called by `SpanStream` once it has stopped: `shutdown` (its export bounded by
        ``SETTLE_S``, not `timeout_s`)."""
        self.shutdown()
