"""Property tests for what the Celery and ASGI integrations read from outside: Celery message
headers and requests, error envelopes in result backends, ASGI request headers and paths.

Each asserts what a caller relies on — no exception at all where none is documented (the hop
goes ahead with a fresh root, the caller gets Celery's own exception), no hang (every example
under a second), bounded memory and output — with a budget small enough for CI.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator, MutableMapping
from types import SimpleNamespace
from typing import Any

import pytest
from celery import Celery
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.context import Context

from tests.fuzz.bounds import BUDGET, bounded
from tracectx.propagation import extract, has_remote_parent
from tracectx.safetext import has_control
from tracectx_asgi.headers import request_headers
from tracectx_asgi.middleware import MAX_LOGGED_PATH, TracectxMiddleware
from tracectx_celery import results
from tracectx_celery.carrier import MAX_VALUE, RequestGetter, context_from
from tracectx_celery.results import MAX_ENVELOPE_NODES, envelope_shape_error

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def nest(value: Any, depth: int, as_dict: bool) -> Any:
    for _ in range(depth):
        value = {"k": value} if as_dict else [value]
    return value


leaf = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=60)
    | st.binary(max_size=60)
)
value = st.recursive(
    leaf,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=30,
)
deep = st.builds(nest, leaf, st.integers(0, 3000), st.booleans())
# around the getter's length limit (built, not drawn: drawing 8 KB of text is slow)
long_text = st.builds(
    lambda char, size: char * size,
    st.sampled_from(["a", "\x00", "é", ","]),
    st.integers(MAX_VALUE - 2, MAX_VALUE + 2),
)
hostile = value | deep | long_text
field = st.sampled_from(
    ["traceparent", "tracestate", "baggage", "tracectx_previous_attempt", "tracectx_links", "id"]
)
headers = st.dictionaries(field | st.text(max_size=12), hostile | st.just(TRACEPARENT), max_size=6)


# ---- Celery: message headers and requests ---------------------------------------------------


@BUDGET
@given(headers)
def test_getter_returns_only_short_strings(carrier: dict[Any, Any]) -> None:
    getter = RequestGetter()
    with bounded():
        for key in ("traceparent", "tracestate", "baggage", *map(str, carrier)):
            got = getter.get(carrier, key)
            assert got is None or (
                len(got) == 1 and isinstance(got[0], str) and len(got[0]) <= MAX_VALUE
            )
        assert all(isinstance(k, str) for k in getter.keys(carrier))


@BUDGET
@given(headers, st.booleans())
def test_context_from_any_message_never_raises(carrier: dict[Any, Any], as_request: bool) -> None:
    # a worker's Request exposes fields as attributes and in .headers; raw messages are dicts
    source: Any = SimpleNamespace(headers=carrier) if as_request else carrier
    with bounded():
        ctx = context_from(source)
    assert isinstance(ctx, Context)
    if carrier.get("traceparent") == TRACEPARENT:
        assert has_remote_parent(ctx)


# ---- Celery: error envelopes in result backends ----------------------------------------------


@pytest.fixture(scope="module")
def backend() -> Iterator[Any]:
    """A result backend with tracectx's hooks (left as found: the Celery tests patch it too)."""
    patched_here = not results._patches
    results.patch_backend()
    app = Celery("fuzz", backend="cache+memory://", set_as_current=False)
    yield app.backend
    app.close()
    if patched_here:
        results.unpatch_backend()


envelope = st.fixed_dictionaries(
    {},
    optional={
        "v": hostile,
        "type": hostile,
        "kind": hostile | st.sampled_from(["BUSINESS", "TRANSIENT", "NOPE"]),
        "code": hostile,
        "message": hostile,
        "metadata": hostile | st.dictionaries(st.text(max_size=10), hostile, max_size=8),
        "error_id": hostile | st.text(alphabet="0123456789abcdef\n", max_size=34),
        "cause_id": hostile,
        "origin": hostile
        | st.fixed_dictionaries({"trace_id": hostile, "span_id": hostile, "service": hostile}),
    },
)


@BUDGET
@given(envelope | hostile)
def test_any_stored_envelope_gives_an_exception(backend: Any, stored_envelope: Any) -> None:
    stored = {
        "exc_type": "ValueError",
        "exc_message": ["from the worker"],
        "exc_module": "builtins",
        "tracectx": stored_envelope,
    }
    with bounded():
        rebuilt = backend.exception_to_python(stored)
    assert type(rebuilt) is ValueError and rebuilt.args == ("from the worker",)
    metadata = getattr(rebuilt, "metadata", {})
    assert isinstance(metadata, dict) and len(metadata) <= 65  # 64 entries + remote_kind


@BUDGET
@given(hostile | envelope)
def test_shape_check_is_iterative_and_bounded(candidate: Any) -> None:
    with bounded():
        problem = envelope_shape_error(candidate)
    assert problem is None or isinstance(problem, str)


def test_shape_check_refuses_wide_envelopes() -> None:
    assert envelope_shape_error({"metadata": list(range(MAX_ENVELOPE_NODES))}) is not None
    assert envelope_shape_error({"metadata": list(range(100))}) is None


# ---- ASGI: request headers and paths ----------------------------------------------------------

raw_bytes = st.binary(max_size=200)
header_pair = st.tuples(
    st.sampled_from([b"traceparent", b"baggage", b"x-request-id", b"Traceparent"]) | raw_bytes,
    raw_bytes | st.just(TRACEPARENT.encode()),
)
junk_pair = st.one_of(
    st.tuples(st.text(max_size=5), st.text(max_size=5)),
    st.lists(raw_bytes, max_size=3),
    st.none(),
    st.integers(),
)
scope_headers = st.lists(header_pair | junk_pair, max_size=12) | st.none() | st.text(max_size=5)


@BUDGET
@given(scope_headers)
def test_request_headers_never_raise(raw: Any) -> None:
    with bounded():
        parsed = request_headers({"headers": raw})
        ctx = extract(parsed, transport="http")
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in parsed.items())
    assert all(k == k.lower() for k in parsed)
    assert isinstance(ctx, Context)
    if isinstance(raw, list):
        pairs = [
            p
            for p in raw
            if isinstance(p, tuple | list) and len(p) == 2 and all(isinstance(b, bytes) for b in p)
        ]
        total = sum(len(v) + 1 for _, v in pairs)
        assert sum(len(v) for v in parsed.values()) <= total


async def _answer_ok(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})


async def _fail(scope: Any, receive: Any, send: Any) -> None:
    raise ValueError("handler failed")


def _request(app: Any, path: str, raw_headers: list[tuple[bytes, bytes]]) -> int:
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": path, "headers": raw_headers}
    asyncio.run(TracectxMiddleware(app)(scope, receive, send))
    return int(sent[0]["status"])


class _Keep(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=2000), st.lists(header_pair, max_size=8), st.booleans())
def test_any_path_and_headers_answered_and_logged_inert(
    path: str, raw: list[tuple[bytes, bytes]], fails: bool
) -> None:
    keep = _Keep()
    logger = logging.getLogger("tracectx.http")
    logger.addHandler(keep)
    try:
        with bounded():
            status = _request(_fail if fails else _answer_ok, path, raw)
    finally:
        logger.removeHandler(keep)
    assert status == (500 if fails else 204)
    assert len(keep.messages) == (1 if fails else 0)
    for message in keep.messages:
        assert not has_control(message)
        assert len(message) < 2 * MAX_LOGGED_PATH + 200
