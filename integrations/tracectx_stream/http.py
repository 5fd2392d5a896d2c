"""A small read-only HTTP endpoint: the fleet flow graph (JSON and HTML page) and the instance's
counters.

``GET /flow`` (the rolling error flow, in the ``flow`` shape of ``tracectx graph --format
json``), ``GET /flow.html`` (the same flow drawn by the visualiser's page), ``GET /stats``
(counters), ``GET /healthz``. Binds to 127.0.0.1 unless told otherwise.

Standard library only: it serves a few requests a minute to a dashboard, a probe or a curl, so
a framework would be weight without use. What the stdlib server lacks for a port others can
reach is added here, small: each request must arrive whole within `timeout` seconds (a client
that trickles bytes gets 408, it does not hold its thread), at most `max_connections` are served
at once (further ones get 503 at once, from the accepting thread), a request is at most
`MAX_REQUEST` bytes and has no body (413), only GET and HEAD are answered (405), one request per
connection. Beyond loopback, put a reverse proxy in front of it (see docs/stream.md).
"""

from __future__ import annotations

import collections
import io
import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tracectx.request_deadline import Deadline, RequestTooLarge

__all__ = ["MAX_REQUEST", "serve"]

_log = logging.getLogger("tracectx.stream")
MAX_REQUEST = 16 * 1024  # bytes of request line + headers: a GET needs far less
_METHODS = ("GET", "HEAD")
_BUSY = (
    b"HTTP/1.0 503 Service Unavailable\r\nconnection: close\r\nretry-after: 1\r\n"
    b"content-type: application/json\r\ncontent-length: 25\r\n\r\n"
    b'{"error":"too many open"}'
)
_LINGER = 2.0  # seconds a refused connection stays half-open, so the client reads its 503
_MAX_LINGERING = 256


def _answer(result: Any) -> tuple[int, Any]:
    """A route's result as (status, data): ``(status, data)`` as given, anything else 200."""
    if (
        isinstance(result, tuple)
        and len(result) == 2
        and type(result[0]) is int
        and 100 <= result[0] <= 599
    ):
        return result[0], result[1]
    return 200, result


class _Server(ThreadingHTTPServer):
    """A thread per connection, at most `max_connections` of them; the others get 503."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], handler: type, max_connections: int) -> None:
        self._slots = threading.BoundedSemaphore(max_connections)
        self._lingering: collections.deque[tuple[float, socket.socket]] = collections.deque()
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self._refuse(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def _refuse(self, sock: socket.socket) -> None:
        """503 without a thread: written at once (an empty send buffer takes it), then the
        socket lingers half-closed, so closing it with the request unread does not reset the
        connection before the client read the answer."""
        try:
            sock.setblocking(False)
            sock.send(_BUSY)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            sock.close()
            return
        self._lingering.append((time.monotonic() + _LINGER, sock))
        self.service_actions()

    def service_actions(self) -> None:
        """Close refused connections whose time is up (called by `serve_forever` too)."""
        lingering, now = self._lingering, time.monotonic()
        while lingering and (lingering[0][0] <= now or len(lingering) > _MAX_LINGERING):
            _, sock = lingering.popleft()
            try:
                sock.recv(MAX_REQUEST)  # what the client sent, so close() sends no reset
            except OSError:
                pass
            sock.close()

    def server_close(self) -> None:
        super().server_close()
        while self._lingering:
            self._lingering.popleft()[1].close()


def serve(
    routes: dict[str, Callable[[], Any]],
    host: str = "127.0.0.1",
    port: int = 0,
    pages: dict[str, Callable[[], Any]] | None = None,
    *,
    timeout: float = 10.0,
    max_connections: int = 32,
) -> ThreadingHTTPServer:
    """Serve `routes` (path -> function returning JSON-ready data) and `pages` (path ->
    function returning an HTML page) in a daemon thread. A function may return
    ``(status, data)`` to answer with that status (``(503, {...})`` from a health check); any
    other value is answered with 200. A function that raises gets a 500 (logged)."""
    html = dict(pages or {})

    class Handler(BaseHTTPRequestHandler):
        default_request_version = "HTTP/1.0"  # answers to garbled request lines have a status

        def setup(self) -> None:
            super().setup()
            self.rfile = io.BufferedReader(Deadline(self.connection, timeout, MAX_REQUEST))

        def handle_one_request(self) -> None:
            self.close_connection = True  # one request per connection
            self.command, self.request_version, self.requestline = "", "HTTP/1.0", ""
            try:
                self.raw_requestline = self.rfile.readline(MAX_REQUEST + 1)
                if not self.raw_requestline or not self.parse_request():
                    return  # closed before a request, or refused (400, 431) by parse_request
                self.connection.settimeout(timeout)  # for the answer: a reader that stalls
                if self.command not in _METHODS:
                    self._send(405, {"error": "method not allowed"}, allow=", ".join(_METHODS))
                elif self.headers.get("content-length", "0") != "0" or self.headers.get(
                    "transfer-encoding"
                ):
                    self._send(413, {"error": "a request body is not accepted"})
                else:
                    self._route()
                self.wfile.flush()
            except TimeoutError:
                self._last_word(408, "request not received in time")
            except RequestTooLarge:
                self._last_word(413, f"request larger than {MAX_REQUEST} bytes")
            except OSError:
                pass  # the client went away

        def send_error(
            self, code: int, message: str | None = None, explain: str | None = None
        ) -> None:
            """`parse_request`'s refusals (400, 414, 431, 505), as JSON like the others."""
            self._send(code, {"error": message or self.responses.get(code, ("error",))[0]})

        def _last_word(self, status: int, why: str) -> None:
            """Answer a request cut short (408, 413), then read what the client still sends
            for a moment before closing: closing with unread data resets the connection,
            and the client may lose the answer."""
            sock = self.connection
            try:
                sock.settimeout(_LINGER / 4)
                self._send(status, {"error": why})
                self.wfile.flush()
                sock.shutdown(socket.SHUT_WR)
                ends, left = time.monotonic() + _LINGER, 16 * MAX_REQUEST
                while left > 0 and time.monotonic() < ends:
                    got = sock.recv(MAX_REQUEST)
                    if not got:
                        break
                    left -= len(got)
            except OSError:
                pass

        def _route(self) -> None:
            path = self.path.split("?", 1)[0]
            page = html.get(path)
            route = routes.get(path)
            if page is None and route is None:
                self._send(404, {"error": "not found"})
                return
            try:
                status, data = _answer((page or route)())  # type: ignore[misc]
                if page is not None:
                    body = str(data).encode()
                    self._send(status, body, content_type="text/html; charset=utf-8")
                else:
                    self._send(status, json.dumps(data, default=str).encode())
            except Exception:
                _log.exception("tracectx stream: %s failed", path)
                self._send(500, {"error": "internal error"})

        def _send(
            self,
            status: int,
            body: bytes | dict[str, str],
            content_type: str = "application/json",
            allow: str | None = None,
        ) -> None:
            if isinstance(body, dict):
                body = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", content_type)
            self.send_header("content-length", str(len(body)))
            self.send_header("cache-control", "no-store")  # a live view: never a stale copy
            self.send_header("x-content-type-options", "nosniff")
            self.send_header("connection", "close")
            if allow:
                self.send_header("allow", allow)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = _Server((host, port), Handler, max_connections)
    threading.Thread(target=server.serve_forever, name="tracectx-stream-http", daemon=True).start()
    return server
