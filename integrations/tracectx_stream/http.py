"""A small read-only HTTP endpoint: the fleet flow graph and the instance's counters as JSON.

``GET /flow`` (the rolling error flow, in the ``flow`` shape of ``tracectx graph --format
json``), ``GET /stats`` (counters), ``GET /healthz``. Standard library only: it serves a few
requests a minute to a dashboard or a curl, so a framework would be weight without use. Binds
to 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["serve"]


def serve(
    routes: dict[str, Callable[[], Any]], host: str = "127.0.0.1", port: int = 0
) -> ThreadingHTTPServer:
    """Serve `routes` (path -> function returning JSON-ready data) in a daemon thread."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            route = routes.get(self.path.split("?", 1)[0])
            if route is None:
                self.send_error(404)
                return
            body = json.dumps(route(), default=str).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, name="tracectx-stream-http", daemon=True).start()
    return server
