"""Every accepted input shape parses to the same model; broken input is listed, not raised."""

from __future__ import annotations

import base64
import http.server
import json
import socket
import threading

import pytest

from tracectx.file_exporter import spans_to_otlp
from tracectx.viz import analyse, loads_spans
from tracectx.viz.sources.jaeger_api import JaegerAPIError, fetch_trace

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"

JAEGER_TRACE = {
    "traceID": TRACE,
    "spans": [
        {
            "traceID": TRACE,
            "spanID": "00f067aa0ba902b7",
            "operationName": "GET /pay",
            "references": [],
            "startTime": 1000,
            "duration": 500,
            "processID": "p1",
            "tags": [{"key": "span.kind", "type": "string", "value": "server"}],
        },
        {
            "traceID": TRACE,
            "spanID": "00f067aa0ba902b8",
            "operationName": "charge",
            "references": [{"refType": "CHILD_OF", "traceID": TRACE, "spanID": "00f067aa0ba902b7"}],
            "startTime": 1100,
            "duration": 100,
            "processID": "p2",
            "tags": [{"key": "error", "type": "string", "value": "true"}],
            "logs": [
                {
                    "timestamp": 1150,
                    "fields": [
                        {"key": "event", "value": "exception"},
                        {"key": "exception.type", "value": "CardDeclined"},
                    ],
                }
            ],
        },
        {
            "traceID": TRACE,
            "spanID": "00f067aa0ba902b9",
            "operationName": "notify",
            "references": [
                {"refType": "FOLLOWS_FROM", "traceID": TRACE, "spanID": "00f067aa0ba902b7"}
            ],
            "startTime": 1200,
            "duration": 10,
            "processID": "p1",
            "tags": [{"key": "error", "type": "bool", "value": True}],
        },
    ],
    "processes": {"p1": {"serviceName": "api"}, "p2": {"serviceName": "billing"}},
}


def _otlp_doc(hex_ids: bool = True) -> dict:
    def ident(h: str) -> str:
        return h if hex_ids else base64.b64encode(bytes.fromhex(h)).decode()

    return {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "billing"}}]
                },
                "scopeSpans": [
                    {
                        "scope": {"name": "x"},
                        "spans": [
                            {
                                "traceId": ident(TRACE),
                                "spanId": ident("00f067aa0ba902b7"),
                                "parentSpanId": "",
                                "name": "GET /pay",
                                "kind": "SPAN_KIND_SERVER",
                                "startTimeUnixNano": "1000",
                                "endTimeUnixNano": "2000",
                                "status": {},
                            },
                            {
                                "traceId": ident(TRACE),
                                "spanId": ident("00f067aa0ba902b8"),
                                "parentSpanId": ident("00f067aa0ba902b7"),
                                "name": "charge",
                                "kind": 3,
                                "startTimeUnixNano": "1100",
                                "endTimeUnixNano": "1200",
                                "status": {"code": 2, "message": "declined"},
                                "attributes": [
                                    {"key": "tracectx.error.id", "value": {"stringValue": "abcd"}},
                                    {
                                        "key": "tracectx.error.role",
                                        "value": {"stringValue": "origin"},
                                    },
                                    {
                                        "key": "tracectx.error.kind",
                                        "value": {"stringValue": "BUSINESS"},
                                    },
                                    {"key": "n", "value": {"intValue": "3"}},
                                ],
                            },
                        ],
                    }
                ],
            }
        ]
    }


def _check_charge_is_origin(span_set) -> None:
    [a] = analyse(span_set)
    charge = next(s for s in a.spans.values() if s.name == "charge")
    assert charge.error and any(e.origin == charge.span_id for e in a.errors)
    root = next(s for s in a.spans.values() if s.name == "GET /pay")
    assert charge.parent_id == root.span_id


class TestJaegerShapes:
    @pytest.mark.parametrize(
        "doc",
        [{"data": [JAEGER_TRACE]}, JAEGER_TRACE, [JAEGER_TRACE]],
        ids=["query-api", "bare-trace", "array"],
    )
    def test_shapes(self, doc):
        span_set = loads_spans(json.dumps(doc))
        assert not span_set.problems
        _check_charge_is_origin(span_set)
        services = {s.name: s.service for s in span_set.spans}
        assert services == {"GET /pay": "api", "charge": "billing", "notify": "api"}

    def test_json_lines_and_follows_from_is_async(self):
        text = "\n".join(json.dumps(JAEGER_TRACE) for _ in range(1))
        text += "\n" + json.dumps({"data": []})
        span_set = loads_spans(text)
        [a] = analyse(span_set)
        notify = next(s for s in a.spans.values() if s.name == "notify")
        assert notify.span_id in a.roots
        assert any(e.target == notify.span_id for e in a.async_edges)
        assert any(e.origin == notify.span_id and e.escaped for e in a.errors)


class TestOtlpShapes:
    @pytest.mark.parametrize("hex_ids", [True, False], ids=["hex-ids", "base64-ids"])
    def test_file(self, hex_ids):
        span_set = loads_spans(json.dumps(_otlp_doc(hex_ids)))
        assert not span_set.problems
        _check_charge_is_origin(span_set)
        charge = next(s for s in span_set.spans if s.name == "charge")
        assert charge.attributes["n"] == 3 and charge.kind == "client"

    def test_json_lines_and_api_v3(self):
        text = json.dumps(_otlp_doc()) + "\n" + json.dumps({"result": _otlp_doc()}) + "\n"
        span_set = loads_spans(text)
        assert len(span_set.spans) == 4

    def test_round_trip_through_our_exporter(self, spans):
        from tests.viz.conftest import produce_pipeline
        from tracectx.viz.sources.memory import from_readable_spans

        produce_pipeline()
        finished = spans.get_finished_spans()
        direct = analyse(from_readable_spans(finished))
        via_file = analyse(loads_spans(json.dumps(spans_to_otlp(finished))))
        key = lambda analyses: sorted(  # noqa: E731
            (e.error_id, e.origin, tuple(e.propagators), e.absorber)
            for a in analyses
            for e in a.errors
        )
        assert key(direct) == key(via_file)


class TestBrokenFiles:
    def test_truncated_json(self):
        text = json.dumps(_otlp_doc())[:-40]
        span_set = loads_spans(text)
        assert span_set.problems and "not JSON" in span_set.problems[0]

    def test_one_bad_line_keeps_the_rest(self):
        text = json.dumps(_otlp_doc()) + "\n{broken\n" + json.dumps({"data": [JAEGER_TRACE]})
        span_set = loads_spans(text)
        assert len(span_set.spans) == 5 and any("line 2" in p for p in span_set.problems)

    def test_garbage_values(self):
        doc = {
            "resourceSpans": [None, {"scopeSpans": [{"spans": [{"traceId": "zz", "spanId": 5}]}]}]
        }
        span_set = loads_spans(json.dumps(doc))
        assert not span_set.spans and len(span_set.problems) == 2
        assert loads_spans(b"\xff\xfe").problems


class _V1OnlyJaeger(http.server.BaseHTTPRequestHandler):
    """A server with only the v1 JSON API, answering as Jaeger's v1 handler does: the trace as
    ``{"data": [...]}``, an unknown id as 404 with ``{"errors": [{"code": 404, "msg": "trace
    not found"}]}``, and any other path as Go's plain-text "404 page not found"."""

    def _answer(self, status, body, content_type):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path.startswith(f"/api/traces/{TRACE}"):
            self._answer(200, json.dumps({"data": [JAEGER_TRACE]}).encode(), "application/json")
        elif self.path.startswith("/api/traces/"):
            report = {"data": None, "total": 0, "limit": 0, "offset": 0}
            report["errors"] = [{"code": 404, "msg": "trace not found"}]
            body = json.dumps(report, separators=(",", ":")).encode() + b"\n"
            self._answer(404, body, "text/plain; charset=utf-8")
        else:
            self._answer(404, b"404 page not found\n", "text/plain; charset=utf-8")

    def log_message(self, *args):
        pass


class TestJaegerAPI:
    def test_falls_back_to_v1_on_an_older_server(self):
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _V1OnlyJaeger)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            url = f"http://127.0.0.1:{server.server_address[1]}"
            _check_charge_is_origin(fetch_trace(url, TRACE))
            with pytest.raises(JaegerAPIError, match="not found"):
                fetch_trace(url, "1" * 32)
        finally:
            server.shutdown()

    def test_dead_server_is_a_clear_error(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        with pytest.raises(JaegerAPIError, match="unreachable"):
            fetch_trace(f"http://127.0.0.1:{port}", TRACE, timeout=2)
