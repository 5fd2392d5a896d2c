"""A local stand-in for Jaeger's query service that answers exactly as the real one, per version.

Written from the Go source of jaegertracing/jaeger (``cmd/query/app/apiv3/http_gateway.go`` for
v2.0-v2.18, ``cmd/jaeger/internal/extension/jaegerquery/internal/apiv3/{http_gateway,
query_parser}.go`` from v2.19, ``internal/storage/v2/memory/tenant.go`` for matching, the v1
``http_handler.go`` / ``query_parser.go`` and ``server.go``'s ``/api/`` catch-all):

- ``v2.0``: api_v3 search reads ``query.service_name`` / ``operation_name`` /
  ``start_time_min|max`` (both required, RFC 3339) / ``num_traces``, ignores
  ``query.attributes``; nothing found is 200 ``{"result": {}}``.
- ``v2.5`` (v2.2-v2.18): as v2.0, but nothing found is 404
  ``{"error":{"httpCode":404,"message":"No traces found"}}`` written by Go's ``http.Error``
  (``text/plain; charset=utf-8``, a trailing newline).
- ``v2.19`` (v2.19-v2.20): camelCase names canonical (``query.serviceName``,
  ``query.startTimeMin``, ``query.searchDepth`` ...), snake_case and ``query.num_traces`` as
  deprecated aliases, ``query.attributes`` a JSON map of strings matched like the memory
  store (``error`` is the span's error status), min must be before max, depth 100 by default.
- ``main``: as v2.19, and the v1 search ``GET /api/traces`` is removed (``/api/traces/{id}``
  stays), so it answers the catch-all's plain "404 page not found".
- ``v1only``: no api_v3 at all (plain 404), the v1 JSON API only.

Errors of the gateway are ``{"error": {"httpCode": N, "message": ...}}``; the v1 API's are
``{"data": null, "total": 0, "limit": 0, "offset": 0, "errors": [{"code": N, "msg": ...}]}``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import http.server
import json
import threading
import urllib.parse
from typing import Any

GENERATIONS = ("v2.0", "v2.5", "v2.19", "main", "v1only")


@dataclasses.dataclass
class StoredSpan:
    trace_id: str
    span_id: str
    parent_id: str | None
    name: str
    service: str
    start: dt.datetime
    error: bool = False
    attributes: dict[str, str] = dataclasses.field(default_factory=dict)


class _Bad(Exception):
    pass


def _rfc3339(text: str, name: str) -> dt.datetime:
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise _Bad(f"malformed parameter {name}: {exc}") from None


def _micros(text: str) -> dt.datetime:
    return dt.datetime.fromtimestamp(int(text) / 1e6, dt.UTC)


def _ns(moment: dt.datetime) -> int:
    return int(moment.timestamp() * 1e9)


class JaegerStandIn:
    """Serves `spans` as Jaeger `generation` does; records every request's path and query."""

    def __init__(self, generation: str, spans: list[StoredSpan]) -> None:
        assert generation in GENERATIONS
        self.generation = generation
        self.spans = spans
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.understood: list[dict[str, Any]] = []  # the search as the gateway parsed it
        self.storage_error: str | None = None
        stand_in = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                stand_in.handle(self)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # --- answers --------------------------------------------------------------------------

    @staticmethod
    def _send(handler: Any, status: int, body: bytes, content_type: str) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def _http_error(self, handler: Any, status: int, text: str) -> None:
        """Go's ``http.Error``: plain text with a trailing newline."""
        self._send(handler, status, text.encode() + b"\n", "text/plain; charset=utf-8")

    def _gateway_error(self, handler: Any, status: int, message: str) -> None:
        report = {"error": {"httpCode": status, "message": message}}
        self._http_error(handler, status, json.dumps(report, separators=(",", ":")))

    def _v1_error(self, handler: Any, status: int, message: str) -> None:
        report = {"data": None, "total": 0, "limit": 0, "offset": 0}
        report["errors"] = [{"code": status, "msg": message}]
        self._http_error(handler, status, json.dumps(report, separators=(",", ":")))

    def handle(self, handler: Any) -> None:
        url = urllib.parse.urlsplit(handler.path)
        query = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
        self.requests.append((url.path, query))
        path = url.path
        v3 = self.generation != "v1only"
        if v3 and path == "/api/v3/traces":
            return self._find_v3(handler, query)
        if v3 and path.startswith("/api/v3/traces/"):
            return self._get_v3(handler, path.rsplit("/", 1)[1])
        if path == "/api/traces" and self.generation != "main":
            return self._find_v1(handler, query)
        if path.startswith("/api/traces/"):
            return self._get_v1(handler, path.rsplit("/", 1)[1])
        self._http_error(handler, 404, "404 page not found")

    # --- api_v3 ---------------------------------------------------------------------------

    def _parse_v3(self, q: dict[str, str]) -> dict[str, Any]:
        new = self.generation in ("v2.19", "main")

        def get(canonical: str, deprecated: str) -> tuple[str, str]:
            if new and q.get(canonical):
                return q[canonical], canonical
            return q.get(deprecated, ""), deprecated

        service, _ = get("query.serviceName", "query.service_name")
        operation, _ = get("query.operationName", "query.operation_name")
        attributes: dict[str, str] = {}
        if new and q.get("query.attributes"):
            try:
                attributes = json.loads(q["query.attributes"])
            except ValueError as exc:
                raise _Bad(f"malformed parameter query.attributes: {exc}") from None
            if not isinstance(attributes, dict) or not all(
                isinstance(v, str) for v in attributes.values()
            ):
                raise _Bad("malformed parameter query.attributes: json: cannot unmarshal")
        min_name = "query.startTimeMin" if new else "query.start_time_min"
        max_name = "query.startTimeMax" if new else "query.start_time_max"
        tmin, tmin_param = get("query.startTimeMin", "query.start_time_min")
        tmax, tmax_param = get("query.startTimeMax", "query.start_time_max")
        if not tmin or not tmax:
            raise _Bad(f"{min_name} and {max_name} are required")
        start_min, start_max = _rfc3339(tmin, tmin_param), _rfc3339(tmax, tmax_param)
        if new and not start_min < start_max:
            raise _Bad(f"{min_name} must be before {max_name}")
        if new:
            depth_text, depth_param = get("query.searchDepth", "query.search_depth")
            if not depth_text:
                depth_text, depth_param = q.get("query.num_traces", ""), "query.num_traces"
        else:
            depth_text, depth_param = q.get("query.num_traces", ""), "query.num_traces"
        depth = 100 if new else 0
        if depth_text:
            try:
                depth = int(depth_text)
            except ValueError:
                raise _Bad(
                    f'malformed parameter {depth_param}: strconv.Atoi: parsing "{depth_text}": invalid syntax'
                ) from None
        return {
            "service": service,
            "operation": operation,
            "start_min": start_min,
            "start_max": start_max,
            "depth": depth,
            "attributes": attributes,
        }

    def _span_ok(self, s: StoredSpan, p: dict[str, Any]) -> bool:
        if p["service"] and s.service != p["service"]:
            return False
        if p["operation"] and s.name != p["operation"]:
            return False
        if not p["start_min"] <= s.start <= p["start_max"]:
            return False
        for key, value in p["attributes"].items():
            if key == "error":
                if s.error != (value == "true"):
                    return False
            elif s.attributes.get(key) != value:
                return False
        return True

    def _find(self, p: dict[str, Any]) -> list[list[StoredSpan]]:
        traces: dict[str, list[StoredSpan]] = {}
        for s in self.spans:
            traces.setdefault(s.trace_id, []).append(s)
        found = [t for t in traces.values() if any(self._span_ok(s, p) for s in t)]
        found.sort(key=lambda t: min(s.start for s in t), reverse=True)
        return found[: p["depth"]] if p["depth"] > 0 else found

    def _find_v3(self, handler: Any, q: dict[str, str]) -> None:
        try:
            params = self._parse_v3(q)
        except _Bad as exc:
            return self._gateway_error(handler, 400, str(exc))
        self.understood.append(params)
        if self.storage_error:
            return self._gateway_error(handler, 500, self.storage_error)
        self._return_traces(handler, self._find(params))

    def _get_v3(self, handler: Any, trace_id: str) -> None:
        self._return_traces(handler, [[s for s in self.spans if s.trace_id == trace_id]])

    def _return_traces(self, handler: Any, traces: list[list[StoredSpan]]) -> None:
        traces = [t for t in traces if t]
        if not traces and self.generation != "v2.0":
            return self._gateway_error(handler, 404, "No traces found")
        resource_spans = [rs for t in traces for rs in _otlp(t)]
        result = {"resourceSpans": resource_spans} if resource_spans else {}
        # jsonpb output with no Content-Type set: Go sniffs JSON text as text/plain.
        body = json.dumps({"result": result}).encode()
        self._send(handler, 200, body, "text/plain; charset=utf-8")

    # --- v1 JSON API ----------------------------------------------------------------------

    def _find_v1(self, handler: Any, q: dict[str, str]) -> None:
        if not q.get("service"):
            return self._v1_error(handler, 400, "parameter 'service' is required")
        tags = json.loads(q["tags"]) if q.get("tags") else {}
        now = dt.datetime.now(dt.UTC)  # no start/end: the last two days (the default lookback)
        start = q.get("start")
        end = q.get("end")
        params = {
            "service": q["service"],
            "operation": q.get("operation", ""),
            "start_min": _micros(start) if start else now - dt.timedelta(days=2),
            "start_max": _micros(end) if end else now,
            "depth": int(q.get("limit") or 20),
            "attributes": tags,
        }
        self.understood.append(params)
        data = [_jaeger(t) for t in self._find(params)]
        body = {"data": data, "total": len(data), "limit": 0, "offset": 0, "errors": None}
        self._send(handler, 200, json.dumps(body).encode(), "application/json")

    def _get_v1(self, handler: Any, trace_id: str) -> None:
        spans = [s for s in self.spans if s.trace_id == trace_id]
        if not spans:
            return self._v1_error(handler, 404, "trace not found")
        body = {"data": [_jaeger(spans)], "total": 0, "limit": 0, "offset": 0, "errors": None}
        self._send(handler, 200, json.dumps(body).encode(), "application/json")


def _otlp(trace: list[StoredSpan]) -> list[dict[str, Any]]:
    by_service: dict[str, list[dict[str, Any]]] = {}
    for s in trace:
        by_service.setdefault(s.service, []).append(
            {
                "traceId": s.trace_id,
                "spanId": s.span_id,
                "parentSpanId": s.parent_id or "",
                "name": s.name,
                "kind": 2,
                "startTimeUnixNano": str(_ns(s.start)),
                "endTimeUnixNano": str(_ns(s.start) + 1_000_000),
                "attributes": [
                    {"key": k, "value": {"stringValue": v}} for k, v in s.attributes.items()
                ],
                "status": {"code": 2} if s.error else {},
            }
        )
    return [
        {
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": svc}}]},
            "scopeSpans": [{"scope": {}, "spans": spans}],
        }
        for svc, spans in by_service.items()
    ]


def _jaeger(trace: list[StoredSpan]) -> dict[str, Any]:
    services = sorted({s.service for s in trace})
    pid = {svc: f"p{i + 1}" for i, svc in enumerate(services)}
    spans = []
    for s in trace:
        tags = [{"key": k, "type": "string", "value": v} for k, v in s.attributes.items()]
        if s.error:
            tags.append({"key": "error", "type": "bool", "value": True})
        refs = [{"refType": "CHILD_OF", "traceID": s.trace_id, "spanID": s.parent_id}]
        spans.append(
            {
                "traceID": s.trace_id,
                "spanID": s.span_id,
                "operationName": s.name,
                "references": refs if s.parent_id else [],
                "startTime": _ns(s.start) // 1000,
                "duration": 1000,
                "tags": tags,
                "logs": [],
                "processID": pid[s.service],
                "warnings": None,
            }
        )
    return {
        "traceID": trace[0].trace_id,
        "spans": spans,
        "processes": {p: {"serviceName": svc, "tags": []} for svc, p in pid.items()},
        "warnings": None,
    }
