"""A two-process app for the propagation check: an HTTP server and a client, each writing its
spans to its own OTLP JSON file (`tracectx.file_exporter.OTLPJsonFileExporter`).

    python -m tests.viz.two_process_app serve SPANS PORT_FILE   # until GET /shutdown
    python -m tests.viz.two_process_app call SPANS PORT N

The client makes N checkouts; each calls ``GET /pay/<n>`` with the context injected
(`tracectx.inject`) and ``GET /stock/<n>`` without it: the deliberately uninstrumented hop (a
client that never had the propagator). The server extracts what it is given
(`tracectx.extract`), so its ``/stock`` spans start new traces. Spans carry what HTTP
instrumentations write (method, URL, route, address, port, status).
"""

from __future__ import annotations

import http.server
import sys
import threading
from pathlib import Path

import httpx
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind

import tracectx
from tracectx.file_exporter import OTLPJsonFileExporter


def _provider(service: str, spans: str) -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPJsonFileExporter(spans)))
    return provider


def serve(spans: str, port_file: str) -> None:
    provider = _provider("stock-and-pay", spans)
    tracer = provider.get_tracer("two_process_app")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/shutdown":
                self._answer(200)
                threading.Thread(target=server.shutdown).start()
                return
            route = "/pay/{n}" if self.path.startswith("/pay/") else "/stock/{n}"
            context = tracectx.extract(dict(self.headers.items()))
            with tracer.start_as_current_span(
                f"GET {route}",
                context=context,
                kind=SpanKind.SERVER,
                attributes={
                    "http.request.method": "GET",
                    "url.path": self.path,
                    "http.route": route,
                    "server.address": "127.0.0.1",
                    "server.port": server.server_address[1],
                    "thread.name": threading.current_thread().name,
                },
            ) as span:
                with tracer.start_as_current_span("SELECT stock", kind=SpanKind.CLIENT):
                    pass
                span.set_attribute("http.response.status_code", 200)
                self._answer(200)

        def _answer(self, status: int) -> None:
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    Path(port_file).write_text(str(server.server_address[1]))
    server.serve_forever()
    provider.shutdown()


def call(spans: str, port: int, n: int) -> None:
    provider = _provider("checkout", spans)
    tracer = provider.get_tracer("two_process_app")
    with httpx.Client(timeout=30) as client:
        for i in range(n):
            with tracer.start_as_current_span("POST /checkout", kind=SpanKind.SERVER):
                for path, propagate in ((f"/pay/{i}", True), (f"/stock/{i}", False)):
                    url = f"http://127.0.0.1:{port}{path}"
                    with tracer.start_as_current_span(
                        "GET",
                        kind=SpanKind.CLIENT,
                        attributes={
                            "http.request.method": "GET",
                            "url.full": url,
                            "server.address": "127.0.0.1",
                            "server.port": port,
                        },
                    ) as span:
                        headers = tracectx.inject({}) if propagate else {}
                        answer = client.get(url, headers=headers)
                        span.set_attribute("http.response.status_code", answer.status_code)
    provider.shutdown()


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(sys.argv[2], sys.argv[3])
    else:
        call(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
