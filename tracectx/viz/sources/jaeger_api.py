"""Fetch traces from Jaeger's HTTP query API: api_v3 first, the v1 JSON API for older servers.

What the api_v3 HTTP gateway answers (read from its Go source, ``http_gateway.go`` and, since
v2.19, ``query_parser.go`` of jaegertracing/jaeger):

- A search or a trace lookup that finds nothing answers **404** with the body
  ``{"error":{"httpCode":404,"message":"No traces found"}}`` (v2.2 onwards; v2.0-v2.1 answer 200
  with an empty result). A 404 whose body is not such a JSON error report ("404 page not found",
  Go's plain text for an unknown route) means the API itself is missing. Only then do we fall
  back to v1, and only a missing v1 route means "no trace search API". An empty search is an
  empty result, not an error.
- Parameter names changed in v2.19: ``query.serviceName``, ``query.operationName``,
  ``query.startTimeMin/Max``, ``query.searchDepth`` and ``query.attributes`` (a JSON map) are
  canonical; the snake_case names (``query.service_name``, ``query.start_time_min`` ...,
  ``query.search_depth``) and ``query.num_traces`` stay as deprecated aliases. v2.0-v2.18 read
  only ``query.service_name``, ``query.operation_name``, ``query.start_time_min/max`` and
  ``query.num_traces``, and ignore ``query.attributes``. We send both spellings (every version
  ignores names it does not know and v2.19+ prefers the canonical one), so one request works
  against both generations without a probe.
- Because a server older than v2.19 ignores ``query.attributes``, the search is applied here
  too, the way Jaeger's storage matches: one span of the service (and operation) carrying every
  attribute, ``error`` meaning the span's error status. A note says when the server had not
  filtered.
- Jaeger main removed the v1 search ``GET /api/traces`` (``/api/traces/{id}`` stays).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from collections.abc import Mapping
from typing import Any

from tracectx.viz.model import Span, SpanSet

__all__ = [
    "JaegerAPIError",
    "TraceSearch",
    "fetch_service",
    "fetch_trace",
    "matches",
    "parse_lookback",
    "parse_response",
    "parse_tag",
    "search_params",
]

_LOOKBACK = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_MAX_LOOKBACK = dt.timedelta(days=3660)  # ten years: any longer is a typo, not a search


class JaegerAPIError(RuntimeError):
    """Jaeger could not be reached or answered something we cannot read."""


@dataclasses.dataclass(frozen=True, slots=True)
class TraceSearch:
    """What to search for: a service's traces that started within `lookback`, at most `limit`
    of them, optionally of one `operation` and with a span carrying every `attributes` pair."""

    service: str
    lookback: dt.timedelta = dt.timedelta(hours=1)
    limit: int = 20
    operation: str | None = None
    attributes: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def describe(self) -> str:
        """The search in words, for messages (caller escapes it before printing)."""
        parts = [f"service {self.service!r}", f"last {self.lookback}"]
        if self.operation:
            parts.append(f"operation {self.operation!r}")
        if self.attributes:
            parts.append(" ".join(f"{k}={v}" for k, v in self.attributes.items()))
        return ", ".join(parts)


def parse_lookback(text: str) -> dt.timedelta:
    """``30m`` / ``1h`` / ``2d`` / ``1w`` / ``90s`` / ``1.5h`` as a positive `timedelta`;
    `ValueError` for anything else (no unit, zero, more than ten years)."""
    match = _LOOKBACK.fullmatch(text)
    if match is None:
        raise ValueError(f"lookback {text!r}: expected a number and a unit (ms, s, m, h, d, w)")
    seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if not 0 < seconds <= _MAX_LOOKBACK.total_seconds():
        raise ValueError(f"lookback {text!r}: must be above zero and at most ten years")
    return dt.timedelta(seconds=seconds)


def parse_tag(text: str) -> tuple[str, str]:
    """``key=value`` (split at the first ``=``) as a pair; `ValueError` without a key."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"tag {text!r}: expected key=value, e.g. error=true")
    return key.strip(), value


def _rfc3339(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def search_params(search: TraceSearch, now: dt.datetime) -> dict[str, str]:
    """api_v3 search parameters under both generations' names (see the module docstring)."""
    start, end = _rfc3339(now - search.lookback), _rfc3339(now)
    params = {
        "query.serviceName": search.service,
        "query.service_name": search.service,
        "query.startTimeMin": start,
        "query.start_time_min": start,
        "query.startTimeMax": end,
        "query.start_time_max": end,
        "query.searchDepth": str(search.limit),
        "query.num_traces": str(search.limit),
    }
    if search.operation:
        params["query.operationName"] = params["query.operation_name"] = search.operation
    if search.attributes:
        params["query.attributes"] = json.dumps(dict(search.attributes), separators=(",", ":"))
    return params


def _v1_params(search: TraceSearch, now: dt.datetime) -> dict[str, str]:
    end_us = int(now.timestamp() * 1e6)
    params = {
        "service": search.service,
        "start": str(end_us - int(search.lookback.total_seconds() * 1e6)),
        "end": str(end_us),
        "limit": str(search.limit),
    }
    if search.operation:
        params["operation"] = search.operation
    if search.attributes:
        params["tags"] = json.dumps(dict(search.attributes), separators=(",", ":"))
    return params


def _as_text(value: Any) -> str:
    """An attribute value as Go's ``pcommon.Value.AsString`` writes it (what Jaeger compares)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), default=str)
    return "" if value is None else str(value)


def _span_has(span: Span, key: str, wanted: str) -> bool:
    if key == "error":
        return span.error == (wanted.lower() == "true")
    if key == "span.kind":
        return span.kind == wanted.lower()
    sources = [
        span.attributes,
        span.resource_attributes or {},
        *(e.attributes for e in span.events),
    ]
    return any(key in attrs and _as_text(attrs[key]) == wanted for attrs in sources)


def matches(spans: list[Span], search: TraceSearch) -> bool:
    """True when one span of `spans` is of the searched service (and operation) and carries
    every pair of its `attributes`: Jaeger's storage matches all conditions on one span."""
    return any(
        s.service == search.service
        and (not search.operation or s.name == search.operation)
        and all(_span_has(s, k, v) for k, v in search.attributes.items())
        for s in spans
    )


def _client(base_url: str, timeout: float) -> Any:
    try:
        import httpx
    except ImportError as exc:  # pragma: no cover
        raise JaegerAPIError(
            "fetching from Jaeger needs the viz extra: pip install tracectx[viz]"
        ) from exc
    # Only encodings `_body` bounds: httpx inflates a whole network chunk in one call, and a
    # zstd or brotli chunk (when those libraries are installed) can inflate to gigabytes.
    return httpx.Client(
        base_url=base_url.rstrip("/"), timeout=timeout, headers={"Accept-Encoding": _ACCEPTED}
    )


_ACCEPTED = "gzip, deflate"
_ENCODINGS = frozenset({"", "identity", "gzip", "deflate"})  # one at most: not stacked


@dataclasses.dataclass(slots=True)
class _Reply:
    """A route's answer: `doc` when it found something; `route` False when it does not exist."""

    doc: Any = None
    route: bool = True


def _error_report(body: bytes) -> str | None:
    """The message of Jaeger's JSON error body (api_v3 ``{"error": {...}}``, v1 ``{"errors":
    [...]}``, grpc-gateway ``{"code", "message"}``); None when the body is no such report."""
    try:
        doc = parse_response("", body)
    except JaegerAPIError:
        return None
    if not isinstance(doc, dict):
        return None
    error = doc.get("error")
    if isinstance(error, dict):
        return str(error.get("message", ""))[:300]
    errors = doc.get("errors")
    if isinstance(errors, list) and errors:
        first = errors[0]
        return str(first.get("msg", "") if isinstance(first, dict) else first)[:300]
    if "code" in doc and "message" in doc:
        return str(doc["message"])[:300]
    return None


def _body(response: Any, path: str) -> bytes:
    """The answer's body, decoded (httpx inflates a gzip/deflate answer) within the
    visualiser's file limits: over them is a `JaegerAPIError`, so a server answering with a
    bomb costs at most one document's limit (and one network chunk inflated) of memory. Any
    other or stacked Content-Encoding (which we did not ask for) is a `JaegerAPIError`."""
    from tracectx.viz.sources.limits import file_limits

    encoding = response.headers.get("content-encoding", "").strip().lower()
    if encoding not in _ENCODINGS:
        raise JaegerAPIError(
            f"Jaeger {path} answered Content-Encoding {encoding[:40]!r} (asked for {_ACCEPTED})"
        )

    limits = file_limits()
    cap = min(limits.max_document, limits.max_inflated)
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > min(cap, limits.inflatable(response.num_bytes_downloaded)):
            raise JaegerAPIError(
                f"Jaeger {path} answered more than the limit ({cap} bytes, or"
                f" {limits.max_ratio} times its {response.num_bytes_downloaded} bytes as sent)"
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _get(client: Any, path: str, params: dict[str, str] | None = None) -> _Reply:
    import httpx

    try:
        with client.stream("GET", path, params=params) as response:
            body = _body(response, path)
    except httpx.HTTPError as exc:
        raise JaegerAPIError(f"Jaeger at {client.base_url} unreachable: {exc}") from exc
    if response.status_code == 404:
        # The gateway's "No traces found" is a JSON report; an unknown route is plain text.
        return _Reply(route=_error_report(body) is not None)
    if response.status_code >= 400:
        detail = _error_report(body) or body[:200].decode("utf-8", "replace")
        raise JaegerAPIError(f"Jaeger {path} answered {response.status_code}: {detail}")
    if not body.strip():  # an empty 200: nothing found
        return _Reply()
    return _Reply(doc=parse_response(path, body))


def parse_response(path: str, body: bytes) -> Any:
    """The JSON document of a Jaeger answer; `JaegerAPIError` when it is not JSON (or nested
    too deep to read). The document itself is read by `parse_document`, which never raises."""
    from tracectx.viz.sources import loads_json

    try:
        return loads_json(body)
    except ValueError as exc:
        raise JaegerAPIError(f"Jaeger {path} answered non-JSON: {exc}") from None


def fetch_trace(base_url: str, trace_id: str, *, timeout: float = 10.0) -> SpanSet:
    """One trace by id: ``/api/v3/traces/{id}``, else (no api_v3) v1 ``/api/traces/{id}``."""
    from tracectx.viz.sources import parse_document

    with _client(base_url, timeout) as client:
        reply = _get(client, f"/api/v3/traces/{trace_id}")
        if not reply.route:
            reply = _get(client, f"/api/traces/{trace_id}")
        if not reply.route:
            raise JaegerAPIError(f"no trace API at {base_url}")
        if reply.doc is None:
            raise JaegerAPIError(f"trace {trace_id} not found in Jaeger at {base_url}")
        found = parse_document(reply.doc)
        if not found.spans and not found.problems:
            raise JaegerAPIError(f"trace {trace_id} not found in Jaeger at {base_url}")
        return found


#: Why a server's answer was not filtered, by the parameter the attributes were sent in.
_IGNORED = {
    "query.attributes": "query.attributes needs Jaeger v2.19+",
    "tags": "its v1 /api/traces ignored the tags parameter",
}


def _filtered(
    found: SpanSet, search: TraceSearch, base_url: str, sent: str = "query.attributes"
) -> SpanSet:
    """Keep the traces with a span matching `search`, the newest `limit` at most; `sent` names
    the parameter the attributes went to the server in (for the note when it ignored them)."""
    by_trace: dict[str, list[Span]] = {}
    for span in found.spans:
        by_trace.setdefault(span.trace_id, []).append(span)
    kept = [spans for spans in by_trace.values() if matches(spans, search)]
    out = SpanSet(problems=list(found.problems))
    dropped = len(by_trace) - len(kept)
    if dropped:
        out.problems.append(
            f"Jaeger at {base_url} did not filter by {json.dumps(dict(search.attributes))} "
            f"({_IGNORED[sent]}): {dropped} of {len(by_trace)} traces "
            f"dropped here; raise --limit to look further back"
        )
    kept.sort(key=lambda spans: min(s.start_ns for s in spans), reverse=True)
    for spans in kept[: search.limit]:
        out.spans.extend(spans)
    return out


def fetch_service(
    base_url: str,
    search: TraceSearch | str,
    *,
    timeout: float = 10.0,
    now: dt.datetime | None = None,
) -> SpanSet:
    """Traces of `search` (a `TraceSearch`, or a service name for the last hour's 20 newest):
    api_v3 ``/api/v3/traces``, else (no api_v3) v1 ``/api/traces``. Nothing found is an empty
    `SpanSet`; `JaegerAPIError` when neither search route exists or Jaeger answers an error."""
    from tracectx.viz.sources import parse_document

    query = TraceSearch(search) if isinstance(search, str) else search
    moment = now or dt.datetime.now(dt.UTC)
    with _client(base_url, timeout) as client:
        sent = "query.attributes"
        reply = _get(client, "/api/v3/traces", search_params(query, moment))
        if not reply.route:
            sent = "tags"
            reply = _get(client, "/api/traces", _v1_params(query, moment))
        if not reply.route:
            raise JaegerAPIError(
                f"no trace search API at {base_url} (neither /api/v3/traces nor /api/traces)"
            )
        if reply.doc is None:
            return SpanSet()
        return _filtered(parse_document(reply.doc), query, base_url, sent)
