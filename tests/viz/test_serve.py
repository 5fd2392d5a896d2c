"""``tracectx serve``: the page of a Jaeger trace one click away, served by a small, hardened
server. A real ``tracectx serve`` process against the Jaeger stand-in, and real Chromium."""

from __future__ import annotations

import http.client
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.bounds import BUDGET
from tests.viz.html_browser import Browser
from tests.viz.jaeger_gateway import JaegerStandIn
from tests.viz.test_jaeger_api import store
from tracectx.viz.serve import parse_address

FAILED = [f"{n:032x}" for n in (1, 3, 5)]  # the stand-in's traces with errors in the last hour
SERVE = [sys.executable, "-m", "tracectx", "serve"]


class Served:
    def __init__(self, jaeger: JaegerStandIn) -> None:
        self.jaeger = jaeger
        self.proc = subprocess.Popen(
            [*SERVE, "--jaeger", jaeger.url, "--http", "127.0.0.1:0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line.startswith("serving on http://127.0.0.1:"), line
        self.url = line.split()[2].rstrip("/")
        self.port = int(self.url.rsplit(":", 1)[1])

    def request(
        self, method: str, target: str, body: bytes | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            conn.putrequest(method, target, skip_accept_encoding=True)
            if body is not None:
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            reply = conn.getresponse()
            return reply.status, {k.lower(): v for k, v in reply.getheaders()}, reply.read()
        finally:
            conn.close()

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    jaeger = JaegerStandIn("v2.19", store())
    server = Served(jaeger)
    try:
        yield server
    finally:
        server.close()
        jaeger.close()


class TestRoutes:
    def test_a_trace_id_answers_the_page_read_from_jaeger(self, served):
        status, headers, body = served.request("GET", f"/trace/{FAILED[0]}")
        assert status == 200 and headers["content-type"] == "text/html; charset=utf-8"
        assert body.startswith(b"<!doctype html") and FAILED[0].encode() in body
        assert headers["x-content-type-options"] == "nosniff"
        assert ("/api/v3/traces/" + FAILED[0]) in [p for p, _ in served.jaeger.requests]

    def test_head_answers_headers_only(self, served):
        status, headers, body = served.request("HEAD", f"/trace/{FAILED[1]}")
        assert status == 200 and body == b"" and int(headers["content-length"]) > 1000

    def test_search_lists_the_traces_with_errors_linking_to_their_pages(self, served):
        status, headers, body = served.request("GET", "/search?service=checkout")
        assert status == 200 and "default-src 'none'" in headers["content-security-policy"]
        text = body.decode()
        for tid in FAILED:
            assert f"<a href=/trace/{tid}>" in text
        assert text.count("<a href=/trace/") == 3  # traces without errors are not listed

    def test_unknown_trace_is_404_and_bad_ids_are_refused_before_jaeger_is_asked(self, served):
        assert served.request("GET", "/trace/" + "ab" * 16)[0] == 404
        before = len(served.jaeger.requests)
        for bad in ("zz", "1" * 33, "..%2f..%2fetc", "", "%00"):
            status, headers, _ = served.request("GET", f"/trace/{bad}")
            assert status == 400 and headers["content-type"].startswith("text/plain"), bad
        assert len(served.jaeger.requests) == before

    def test_only_get_and_head(self, served):
        for method in ("POST", "PUT", "DELETE", "OPTIONS", "TRACE"):
            status, headers, _ = served.request(method, f"/trace/{FAILED[0]}", b"x" * 10)
            assert status == 405 and headers["allow"] == "GET, HEAD"

    def test_nothing_is_reflected_as_html_and_nothing_redirects(self, served):
        attack = "%3Cscript%3Ealert(1)%3C%2Fscript%3E"
        status, headers, body = served.request("GET", f"/search?service={attack}")
        assert status == 200 and b"<script>alert" not in body and b"&lt;script&gt;" in body
        for target in (f"/{attack}", "//evil.example/trace/1", "/trace/1/../../x"):
            status, headers, body = served.request("GET", target)
            assert status in (400, 404) and "location" not in headers
            assert headers["content-type"].startswith("text/plain")

    def test_bad_search_parameters_are_400(self, served):
        for query in ("", "service=", "service=a&lookback=forever", "service=a&limit=0"):
            assert served.request("GET", f"/search?{query}")[0] == 400, query
        assert served.request("GET", "/search?service=" + "a" * 300)[0] == 400

    def test_an_overlong_target_is_refused(self, served):
        assert served.request("GET", "/trace/" + "a" * 5000)[0] == 414

    @BUDGET
    @given(st.binary(max_size=120).filter(lambda b: not set(b) & set(b"\r\n ")))
    def test_any_request_target_gets_a_documented_answer(self, served, target):
        """Raw bytes as the target (control characters, non-UTF-8, ``..``, ``//``): 200 for a
        page, else 400/404/414 as plain text; never a redirect, a 500 or a hang."""
        with socket.create_connection(("127.0.0.1", served.port), timeout=60) as conn:
            host = f"127.0.0.1:{served.port}".encode()
            conn.sendall(b"GET /" + target + b" HTTP/1.0\r\nHost: " + host + b"\r\n\r\n")
            reply = b""
            while chunk := conn.recv(65536):
                reply += chunk
        head = reply.split(b"\r\n\r\n", 1)[0].lower()
        status = int(head.split()[1])
        assert status in (200, 400, 404, 414) and b"\r\nlocation:" not in head


def _raw(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=60) as conn:
        conn.sendall(request)
        reply = b""
        while chunk := conn.recv(65536):
            reply += chunk
    return reply


def test_only_its_own_host_is_answered(served):
    """DNS rebinding: a page on evil.example whose name now points at 127.0.0.1 sends
    ``Host: evil.example:PORT``; it gets 403, not traces."""
    port = served.port
    for host, status in [
        (f"127.0.0.1:{port}", 200),
        (f"localhost:{port}", 200),
        (f"LOCALHOST:{port}", 200),
        (f"evil.example:{port}", 403),
        ("127.0.0.1:1", 403),
        (f"127.0.0.1.evil.example:{port}", 403),
        ("", 403),
    ]:
        reply = _raw(port, f"GET / HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
        assert int(reply.split()[1]) == status, (host, reply[:200])
    assert int(_raw(port, b"GET / HTTP/1.0\r\n\r\n").split()[1]) == 403  # no Host at all


@pytest.fixture(params=[1.0])
def quick_server(request):
    """An in-process server with a request deadline of `request.param` seconds (1 unless a
    test asks otherwise) and room for two connections."""
    import threading

    from tracectx.viz.serve import ServeConfig, make_server

    config = ServeConfig("http://127.0.0.1:9", socket_timeout=request.param, connections=2)
    server = make_server(("127.0.0.1", 0), config)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_a_trickling_client_is_cut_off_at_the_request_deadline(quick_server):
    """One header byte every 0.1 s never lets a per-read timeout run out; the request's
    deadline (1 s here) closes the connection anyway."""
    import time

    with socket.create_connection(("127.0.0.1", quick_server), timeout=60) as conn:
        conn.sendall(b"GET / HTTP/1.0\r\n")
        ends = time.monotonic() + 30  # far past the deadline: a loaded machine is slow
        closed = False
        while not closed and time.monotonic() < ends:
            try:
                conn.sendall(b"x")
                conn.settimeout(0.1)
                closed = conn.recv(65536) == b""
            except TimeoutError:
                continue
            except OSError:  # reset: closed
                closed = True
        assert closed


@pytest.mark.parametrize("quick_server", [120.0], indirect=True)  # the idle two stay open
def test_connections_past_the_bound_get_503_before_a_thread(quick_server):
    """Two idle connections fill the server's room for two: the third is refused at once."""
    idle = [socket.create_connection(("127.0.0.1", quick_server), timeout=60) for _ in range(2)]
    try:
        host = f"127.0.0.1:{quick_server}".encode()
        reply = _raw(quick_server, b"GET / HTTP/1.0\r\nHost: " + host + b"\r\n\r\n")
        assert reply.split()[1] == b"503", reply[:200]
    finally:
        for conn in idle:
            conn.close()


def test_parse_address():
    assert parse_address("127.0.0.1:8765") == ("127.0.0.1", 8765)
    assert parse_address("[::1]:0") == ("::1", 0)
    for bad in ("8765", "host:", ":80", "h:99999"):
        with pytest.raises(ValueError):
            parse_address(bad)


def test_the_page_loads_in_chromium(served, tmp_path):
    browser = Browser(tmp_path / "profile")
    try:
        browser.open_url(f"{served.url}/trace/{FAILED[0]}")
        assert browser.errors() == []
        assert browser.eval("document.title").strip()
    finally:
        browser.close()


def test_loopback_is_told_apart_and_a_bad_address_is_a_usage_error(capsys):
    from tracectx.cli import main
    from tracectx.viz.serve import _is_loopback

    assert _is_loopback("127.0.0.1") and _is_loopback("::1") and _is_loopback("localhost")
    assert not _is_loopback("0.0.0.0") and not _is_loopback("192.168.1.4")
    assert main(["serve", "--jaeger", "http://127.0.0.1:9", "--http", "8765"]) == 2
    assert "expected HOST:PORT" in capsys.readouterr().err
