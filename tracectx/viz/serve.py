"""``tracectx serve``: the visualiser's page one click from Jaeger, with no file in between.

``GET /trace/<id>`` reads the trace from Jaeger's query API (the client ``graph --jaeger``
uses) and answers the HTML page; ``GET /search?service=NAME`` lists the service's recent
traces with errors, each linking to ``/trace/<id>``. Jaeger UI's ``linkPatterns`` can point
at ``http://localhost:8765/trace/#{traceID}``.

A small server, kept small on purpose: the standard library's ``ThreadingHTTPServer`` (no web
framework for two read-only routes), loopback by default, GET and HEAD only, no request body
read, ids checked as hex before anything is fetched, no redirects, every text it echoes
HTML-escaped, a socket timeout per connection and a bound on requests served at once.
Each request must arrive whole within ``socket_timeout`` seconds (`Deadline`: a client that
trickles bytes does not hold its thread) and at most ``connections`` are open at once (further
ones get 503 from the accepting thread, before a thread is started). Only requests whose
``Host`` is the listening address, ``localhost`` or a loopback address (with the port) are
answered, else 403: a web page that rebinds its DNS name to 127.0.0.1 cannot read traces
through the server.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import html
import io
import ipaddress
import re
import sys
import threading
import urllib.parse
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tracectx.request_deadline import Deadline, RequestTooLarge
from tracectx.safetext import escape_control

__all__ = ["DEFAULT_ADDRESS", "ServeConfig", "make_server", "parse_address", "register"]

DEFAULT_ADDRESS = ("127.0.0.1", 8765)
_TRACE_ID = re.compile(r"[0-9a-fA-F]{1,32}")
_MAX_TARGET = 2048  # request target length answered; longer is 414
_MAX_SERVICE = 256
_MAX_LIMIT = 100
_MAX_REQUEST = 64 * 1024  # bytes of request line and headers (a browser's cookies included)
_BUSY = (
    b"HTTP/1.0 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: 24\r\nRetry-After: 1\r\n\r\nbusy: try again shortly\n"
)
_LIST_CSP = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'"


@dataclasses.dataclass(frozen=True, slots=True)
class ServeConfig:
    """Where Jaeger's API is, the UI the page links back to (default: the API's URL), and how
    long a request may take to arrive (and a stalled reader of the answer), how long Jaeger may
    take, how many requests run at once, how many connections are open at once."""

    jaeger: str
    jaeger_ui: str | None = None
    socket_timeout: float = 15.0
    jaeger_timeout: float = 20.0
    concurrent: int = 8
    connections: int = 32


def parse_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` for IPv6) as a pair; `ValueError` for anything else."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"address {text!r}: expected HOST:PORT, e.g. 127.0.0.1:8765")
    host = host.removeprefix("[").removesuffix("]") if host.startswith("[") else host
    if not host:
        raise ValueError(f"address {text!r}: no host")
    return host, int(port)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _page(title: str, body: str) -> bytes:
    return (
        "<!doctype html><html lang=en><meta charset=utf-8>"
        f"<title>{html.escape(title)}</title>"
        "<style>body{font:14px system-ui,sans-serif;margin:2em}td,th{padding:2px 10px;"
        "text-align:left}code{font-size:13px}</style>"
        f"<h1>{html.escape(title)}</h1>{body}</html>"
    ).encode()


_SEARCH_FORM = (
    "<form action=/search method=get>service <input name=service required maxlength=256> "
    "last <input name=lookback value=1h size=5> <button>traces with errors</button></form>"
)


class _Handler(BaseHTTPRequestHandler):
    """One request: route, answer, close (HTTP/1.0: no connection is kept open)."""

    server_version = "tracectx-serve"
    sys_version = ""
    protocol_version = "HTTP/1.0"
    config: ServeConfig
    slots: threading.BoundedSemaphore
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.rfile = io.BufferedReader(
            Deadline(self.connection, self.config.socket_timeout, _MAX_REQUEST)
        )

    def handle_one_request(self) -> None:
        """The stdlib's, within the request's `Deadline` (its `TimeoutError` the stdlib ends
        the connection on); a request past `_MAX_REQUEST` bytes is 431."""
        try:
            super().handle_one_request()
        except RequestTooLarge:
            self.close_connection = True
            self._text(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "request too large", False)

    def do_GET(self) -> None:
        self._answer(head=False)

    def do_HEAD(self) -> None:
        self._answer(head=True)

    def _refuse(self) -> None:
        self._send(HTTPStatus.METHOD_NOT_ALLOWED, b"only GET and HEAD\n", "text/plain", False)

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_TRACE = do_CONNECT = _refuse

    def log_message(self, format: str, *args: Any) -> None:  # the stdlib's name
        sys.stderr.write(escape_control(f"{self.address_string()} {format % args}", 500) + "\n")

    def _send(
        self, status: HTTPStatus, body: bytes, kind: str, head: bool, csp: str | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", f"{kind}; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("X-Frame-Options", "DENY")
        if status == HTTPStatus.METHOD_NOT_ALLOWED:
            self.send_header("Allow", "GET, HEAD")
        if csp:
            self.send_header("Content-Security-Policy", csp)
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _text(self, status: HTTPStatus, message: str, head: bool) -> None:
        self._send(status, (escape_control(message, 1000) + "\n").encode(), "text/plain", head)

    def _answer(self, head: bool) -> None:
        self.connection.settimeout(self.config.socket_timeout)  # the answer's writes
        if not self.server.serves_host(self.headers.get("Host") or ""):
            self._text(
                HTTPStatus.FORBIDDEN, "Host not served: open the address it listens on", head
            )
            return
        if len(self.path) > _MAX_TARGET:
            self._text(HTTPStatus.REQUEST_URI_TOO_LONG, "request target too long", head)
            return
        if not self.slots.acquire(blocking=False):
            self._text(HTTPStatus.SERVICE_UNAVAILABLE, "busy: try again shortly", head)
            return
        try:
            self._route(head)
        finally:
            self.slots.release()

    def _route(self, head: bool) -> None:
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/":
            self._send(HTTPStatus.OK, _page("tracectx", _SEARCH_FORM), "text/html", head, _LIST_CSP)
        elif url.path.startswith("/trace/"):
            self._trace(url.path.removeprefix("/trace/"), head)
        elif url.path == "/search":
            self._search(url.query, head)
        else:
            self._text(HTTPStatus.NOT_FOUND, "not found: try /trace/<id> or /search?service=", head)

    def _trace(self, trace_id: str, head: bool) -> None:
        from tracectx.viz import analyse
        from tracectx.viz.renderers import render_html
        from tracectx.viz.sources.jaeger_api import JaegerAPIError, fetch_trace

        if not _TRACE_ID.fullmatch(trace_id):
            self._text(HTTPStatus.BAD_REQUEST, "a trace id is 1 to 32 hex digits", head)
            return
        config = self.config
        try:
            spans = fetch_trace(config.jaeger, trace_id.lower(), timeout=config.jaeger_timeout)
        except JaegerAPIError as exc:
            missing = "not found" in str(exc)
            status = HTTPStatus.NOT_FOUND if missing else HTTPStatus.BAD_GATEWAY
            self._text(status, str(exc), head)
            return
        page = render_html(analyse(spans), jaeger_url=config.jaeger_ui or config.jaeger)
        self._send(HTTPStatus.OK, page.encode(), "text/html", head)

    def _search(self, query: str, head: bool) -> None:
        from tracectx.viz.sources.jaeger_api import JaegerAPIError, TraceSearch, parse_lookback

        params = urllib.parse.parse_qs(query, max_num_fields=10)
        service = (params.get("service") or [""])[0].strip()
        try:
            if not service or len(service) > _MAX_SERVICE:
                raise ValueError(f"service: 1 to {_MAX_SERVICE} characters")
            lookback = parse_lookback((params.get("lookback") or ["1h"])[0])
            limit = int((params.get("limit") or ["20"])[0])
            if not 1 <= limit <= _MAX_LIMIT:
                raise ValueError(f"limit: 1 to {_MAX_LIMIT}")
        except ValueError as exc:
            self._text(HTTPStatus.BAD_REQUEST, str(exc), head)
            return
        search = TraceSearch(service, lookback, limit, attributes={"error": "true"})
        try:
            from tracectx.viz.sources.jaeger_api import fetch_service

            found = fetch_service(self.config.jaeger, search, timeout=self.config.jaeger_timeout)
        except JaegerAPIError as exc:
            self._text(HTTPStatus.BAD_GATEWAY, str(exc), head)
            return
        body = _trace_list(found, search.describe())
        self._send(HTTPStatus.OK, body, "text/html", head, _LIST_CSP)


def _trace_list(found: Any, described: str) -> bytes:
    """The search's traces with error paths, newest first, each a link to its page."""
    from tracectx.viz import analyse

    rows = []
    analyses = [a for a in analyse(found) if a.errors]
    analyses.sort(key=lambda a: -min(s.start_ns for s in a.spans.values()))
    for a in analyses:
        start = min(a.spans.values(), key=lambda s: s.start_ns)
        when = dt.datetime.fromtimestamp(start.start_ns / 1e9, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
        escaped = sum(1 for e in a.errors if e.outcome == "escaped")
        tid = a.trace_id if _TRACE_ID.fullmatch(a.trace_id) else ""
        link = f"<a href=/trace/{tid}><code>{tid}</code></a>" if tid else "(no valid id)"
        rows.append(
            f"<tr><td>{link}<td>{when} UTC<td>{html.escape(start.service)}: "
            f"{html.escape(start.name)}<td>{len(a.errors)}<td>{escaped}</tr>"
        )
    notes = "".join(f"<p>{html.escape(p)}</p>" for p in found.problems[:5])
    table = (
        "<table><tr><th>trace<th>started<th>root<th>error paths<th>escaped</tr>"
        + "".join(rows)
        + "</table>"
        if rows
        else "<p>no traces with errors found</p>"
    )
    return _page(
        f"traces with errors: {escape_control(described, 300)}", notes + table + _SEARCH_FORM
    )


class _Server(ThreadingHTTPServer):
    """At most `ServeConfig.connections` connections at once, counted before a thread is
    started; `hosts`: the Host header values answered."""

    daemon_threads = True
    open_slots: threading.BoundedSemaphore
    hosts: frozenset[str] = frozenset()
    any_address = False  # listening on 0.0.0.0 or ::: any IP literal with the port is served

    def serves_host(self, value: str) -> bool:
        """Whether a request with this Host header is answered. An IP literal cannot be
        rebound by DNS, so when listening on every address any one of them is served."""
        value = value.strip().lower()
        if value in self.hosts:
            return True
        name, sep, port = value.rpartition(":")
        if not (self.any_address and sep and port == str(self.server_address[1])):
            return False
        try:
            ipaddress.ip_address(name.removeprefix("[").removesuffix("]"))
        except ValueError:
            return False
        return True

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self.open_slots.acquire(blocking=False):
            try:  # a short answer that fits the socket's buffer; never waits on the client
                request.setblocking(False)
                request.send(_BUSY)
            except OSError:
                pass
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.open_slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.open_slots.release()


def _hosts(host: str, port: int) -> frozenset[str]:
    """The Host header values a server listening on `host`:`port` answers: that address,
    ``localhost`` and the loopback addresses, with the port (without it too on port 80)."""
    names = {host.lower(), "localhost", "127.0.0.1", "::1"}
    shown = {f"[{name}]" if ":" in name else name for name in names}
    with_port = {f"{name}:{port}" for name in shown}
    return frozenset(with_port | shown if port == 80 else with_port)


def make_server(address: tuple[str, int], config: ServeConfig) -> ThreadingHTTPServer:
    """A bound (not yet serving) server for `config`; call ``serve_forever()`` on it."""
    handler = type(
        "Handler",
        (_Handler,),
        {
            "config": config,
            "slots": threading.BoundedSemaphore(config.concurrent),
            "timeout": config.socket_timeout,  # StreamRequestHandler's per-connection timeout
        },
    )
    host = address[0]
    server_class: type[_Server] = _Server
    if ":" in host:
        import socket

        server_class = type("Server6", (_Server,), {"address_family": socket.AF_INET6})
    server = server_class(address, handler)
    server.open_slots = threading.BoundedSemaphore(config.connections)
    server.hosts = _hosts(host, server.server_address[1])
    server.any_address = host in ("0.0.0.0", "::")
    return server


def _run(args: argparse.Namespace) -> int:
    try:
        address = parse_address(args.http)
    except ValueError as exc:
        print(f"tracectx serve: {exc}", file=sys.stderr)
        return 2
    if not _is_loopback(address[0]):
        print(
            f"tracectx serve: listening on {address[0]}, beyond loopback: whoever reaches it reads "
            "your traces through it",
            file=sys.stderr,
        )
    config = ServeConfig(args.jaeger, args.jaeger_ui)
    try:
        server = make_server(address, config)
    except OSError as exc:
        print(f"tracectx serve: cannot listen on {args.http}: {exc}", file=sys.stderr)
        return 1
    host, port = address[0], server.server_address[1]
    shown = f"[{host}]" if ":" in host else host
    print(f"serving on http://{shown}:{port}/ (Jaeger at {args.jaeger})", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``serve`` subcommand to the ``tracectx`` command."""
    serve = sub.add_parser(
        "serve", help="serve error-path pages of traces read from Jaeger (one click from its UI)"
    )
    serve.add_argument("--jaeger", metavar="URL", required=True, help="Jaeger query base URL")
    serve.add_argument(
        "--http",
        metavar="HOST:PORT",
        default=f"{DEFAULT_ADDRESS[0]}:{DEFAULT_ADDRESS[1]}",
        help="where to listen (default 127.0.0.1:8765, loopback only)",
    )
    serve.add_argument("--jaeger-ui", metavar="URL", help="Jaeger UI base URL for the page's links")
    serve.set_defaults(handler=_run)
