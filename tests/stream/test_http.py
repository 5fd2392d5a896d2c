"""The stream's HTTP endpoint against real sockets: answers, statuses from routes, and what
slow, greedy or malformed clients get (408, 503, 413, 405) while others are still served."""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Iterator

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.bounds import BUDGET
from tracectx_stream.http import MAX_REQUEST, serve

WAIT = 30.0  # generous: a verdict normally comes within the server's 1 s timeout


def _serve() -> Iterator[tuple[str, int]]:
    def boom() -> None:
        raise RuntimeError("a route failed")

    srv = serve(
        {
            "/stats": lambda: {"spans": 3},
            "/healthz": lambda: (503, {"ok": False}),
            "/readyz": lambda: (200, {"ready": True}),
            "/boom": boom,
        },
        pages={"/flow.html": lambda: "<p>flow</p>"},
        timeout=1.0,
        max_connections=2,
    )
    host, port = srv.server_address[:2]
    yield str(host), int(port)
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def server() -> Iterator[tuple[str, int]]:
    yield from _serve()


@pytest.fixture(scope="module")
def shared_server() -> Iterator[tuple[str, int]]:
    yield from _serve()


def raw(address: tuple[str, int], data: bytes) -> bytes:
    """Send `data` on a fresh connection and read the answer until the server closes."""
    with socket.create_connection(address, timeout=WAIT) as sock:
        sock.sendall(data)
        return read_all(sock)


def read_all(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def url(address: tuple[str, int], path: str) -> str:
    return f"http://{address[0]}:{address[1]}{path}"


def served(address: tuple[str, int]) -> bool:
    """The endpoint still answers a plain GET (polled: slots free as connections end)."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        try:
            if httpx.get(url(address, "/stats"), timeout=WAIT).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    return False


def test_routes_answer_json_pages_html_and_a_route_may_choose_its_status(server):
    got = httpx.get(url(server, "/stats"), timeout=WAIT)
    assert (got.status_code, got.json()) == (200, {"spans": 3})
    assert got.headers["cache-control"] == "no-store"
    got = httpx.get(url(server, "/healthz"), timeout=WAIT)
    assert (got.status_code, got.json()) == (503, {"ok": False})
    assert httpx.get(url(server, "/readyz"), timeout=WAIT).json() == {"ready": True}
    page = httpx.get(url(server, "/flow.html"), timeout=WAIT)
    assert page.text == "<p>flow</p>" and page.headers["content-type"].startswith("text/html")
    assert httpx.get(url(server, "/nope"), timeout=WAIT).status_code == 404


def test_a_route_that_raises_gets_500_and_the_endpoint_goes_on(server):
    assert httpx.get(url(server, "/boom"), timeout=WAIT).status_code == 500
    assert served(server)


def test_only_get_and_head_are_answered(server):
    head = httpx.head(url(server, "/stats"), timeout=WAIT)
    assert head.status_code == 200 and head.content == b""
    for method in ("POST", "PUT", "DELETE", "OPTIONS", "PATCH"):
        got = httpx.request(method, url(server, "/stats"), timeout=WAIT)
        assert got.status_code == 405, method
        assert got.headers["allow"] == "GET, HEAD"


def test_a_client_that_trickles_its_request_gets_408_and_holds_no_thread(server):
    with socket.create_connection(server, timeout=WAIT) as sock:
        started = time.monotonic()
        for byte in b"GET /stats HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"y" * 300:
            if select.select([sock], [], [], 0.1)[0]:  # each byte well within a read timeout
                break  # the server answered: stop sending
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                break
        answer = read_all(sock)
    assert status(answer) == 408
    assert time.monotonic() - started < WAIT


def test_an_idle_connection_times_out_with_408(server):
    with socket.create_connection(server, timeout=WAIT) as sock:
        assert status(read_all(sock)) == 408


def test_connections_past_the_bound_get_503_and_slots_come_back():
    srv = serve({"/stats": lambda: {"spans": 3}}, timeout=WAIT, max_connections=2)
    server = (srv.server_address[0], srv.server_address[1])
    try:
        check_the_bound(server)
    finally:
        srv.shutdown()
        srv.server_close()


def check_the_bound(server):
    holders = [socket.create_connection(server, timeout=WAIT) for _ in range(2)]
    try:
        for sock in holders:
            sock.sendall(b"GET /stats HTTP/1.1\r\n")  # half a request: holds its slot
        time.sleep(0.3)  # both accepted, most likely (the loop below does not rely on it)
        answer = b""
        deadline = time.monotonic() + WAIT
        while status(answer or b"x 0") != 503 and time.monotonic() < deadline:
            answer = raw(server, b"GET /stats HTTP/1.0\r\n\r\n")
        assert status(answer) == 503 and b"retry-after: 1" in answer
    finally:
        for sock in holders:
            sock.close()
    assert served(server)


def test_oversized_requests_and_bodies_get_413(server):
    big = b"GET /stats HTTP/1.0\r\nX-Pad: " + b"a" * MAX_REQUEST + b"\r\n\r\n"
    assert status(raw(server, big)) == 413
    body = b"GET /stats HTTP/1.0\r\nContent-Length: 5\r\n\r\nhello"
    assert status(raw(server, body)) == 413
    assert served(server)


def test_loopback_is_the_default():
    srv = serve({"/stats": dict})
    try:
        assert srv.server_address[0] == "127.0.0.1"
    finally:
        srv.shutdown()
        srv.server_close()


_LINES = st.one_of(
    st.binary(max_size=300),
    st.builds(
        lambda method, path, version, headers: f"{method} {path} {version}\r\n{headers}\r\n".encode(
            "utf-8", "surrogatepass"
        ),
        st.sampled_from(["GET", "HEAD", "POST", "BREW", "get", ""]),
        st.text(max_size=40),
        st.sampled_from(["HTTP/1.0", "HTTP/1.1", "HTTP/2.0", "HTTP/x", ""]),
        st.text(max_size=80),
    ),
)
_DOCUMENTED = {200, 400, 404, 405, 408, 413, 414, 431, 505}


@BUDGET
@given(request=_LINES)
def test_any_request_bytes_get_a_documented_answer_or_a_close(shared_server, request):
    """Whatever a client sends, the endpoint answers a documented status (or closes an empty
    or garbled request line) within its timeout, and goes on serving."""
    with socket.create_connection(shared_server, timeout=WAIT) as sock:
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)
        try:
            answer = read_all(sock)
        except ConnectionResetError:
            answer = b""
    if answer:
        assert answer.startswith(b"HTTP/1."), answer[:80]
        assert status(answer) in _DOCUMENTED, answer[:80]
