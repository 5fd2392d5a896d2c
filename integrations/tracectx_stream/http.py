"""A small read-only HTTP endpoint: the fleet flow graph (JSON and HTML page) and the instance's
counters.

``GET /flow`` (the rolling error flow, in the ``flow`` shape of ``tracectx graph --format
json``), ``GET /flow.html`` (the same flow drawn by the visualiser's page), ``GET /stats``
(counters), ``GET /healthz``. Standard library only: it serves a few requests a minute to a
dashboard, a browser or a curl, so a framework would be weight without use. Binds to 127.0.0.1
unless told otherwise.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["serve"]


def serve(
    routes: dict[str, Callable[[], Any]],
    host: str = "127.0.0.1",
    port: int = 0,
    pages: dict[str, Callable[[], str]] | None = None,
) -> ThreadingHTTPServer:
    """Serve `routes` (path -> function returning JSON-ready data) and `pages` (path ->
    function returning an HTML page) in a daemon thread."""
    html = dict(pages or {})

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path in html:
                self._send(html[path]().encode(), "text/html; charset=utf-8")
            elif path in routes:
                self._send(json.dumps(routes[path](), default=str).encode(), "application/json")
            else:
                self.send_error(404)

        def _send(self, body: bytes, content_type: str) -> None:
            self.send_response(200)
            self.send_header("content-type", content_type)
            self.send_header("content-length", str(len(body)))
            self.send_header("cache-control", "no-store")  # a live view: never a stale copy
            self.send_header("x-content-type-options", "nosniff")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, name="tracectx-stream-http", daemon=True).start()
    return server
