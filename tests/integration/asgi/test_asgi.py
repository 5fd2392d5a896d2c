"""The ASGI middleware through httpx's ASGI transport on a Starlette app: statuses,
problem+json bodies, no leaks, the caller's trace continued, hostile headers survived."""

from __future__ import annotations

import logging

import httpx
import pytest
from opentelemetry.trace import SpanKind, StatusCode
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.helpers import by_name, hex_trace
from tracectx import ErrorKind, get_bound, new_error, register_kind
from tracectx import semconv as sc
from tracectx_asgi import AsgiInstrumentor, TracectxMiddleware

SECRET = "s3cr3t-db-host:5432"


async def ok(request):
    return JSONResponse({"item": request.path_params["item_id"], "bound": get_bound()})


async def business(request):
    raise new_error(
        ErrorKind.BUSINESS,
        "insufficient balance",
        code="E42",
        account_id="acc_1",
        card_number="4111111111111111",
    )


async def transient(request):
    raise new_error(ErrorKind.TRANSIENT, "payment provider busy", code="T7")


async def fatal(request):
    raise new_error(ErrorKind.FATAL, f"config broken at {SECRET}", code="F1")


async def unknown(request):
    raise ValueError(f"cannot connect to {SECRET}")


async def auth(request):
    raise new_error(
        register_kind("AUTH", 4001, base=ErrorKind.BUSINESS, http_status=401),
        "token expired",
        code="A1",
    )


def make_app(**middleware_options) -> Starlette:
    app = Starlette(
        routes=[
            Route("/items/{item_id}", ok),
            Route("/pay", business),
            Route("/busy", transient),
            Route("/fatal", fatal),
            Route("/unknown", unknown),
            Route("/auth", auth),
        ]
    )
    app.add_middleware(TracectxMiddleware, **middleware_options)
    return app


async def get(app, path: str, **kw) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.get(path, **kw)


CASES = [
    ("/pay", 400, "BUSINESS", "E42", "insufficient balance"),
    ("/busy", 503, "TRANSIENT", "T7", "payment provider busy"),
    ("/fatal", 500, "FATAL", "F1", None),
    ("/unknown", 500, "UNKNOWN", "unknown", None),
    ("/auth", 401, "AUTH", "A1", "token expired"),
]


@pytest.mark.parametrize(
    ("path", "status", "kind", "code", "detail"), CASES, ids=[c[0] for c in CASES]
)
async def test_error_answered_as_problem_json(spans, path, status, kind, code, detail):
    response = await get(make_app(), path)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    server = next(s for s in spans.get_finished_spans() if s.kind is SpanKind.SERVER)
    assert body["status"] == status and body["kind"] == kind and body["code"] == code
    assert body["type"] == f"urn:tracectx:problem:{code}" and body["instance"] == path
    assert body["trace_id"] == hex_trace(server)
    assert body["error_id"] == server.attributes[sc.ATTR_ID]
    assert body.get("detail") == detail
    assert body["title"]
    text = response.text
    for leak in (SECRET, "Traceback", "4111", "card_number", "account_id", 'File "'):
        assert leak not in text
    assert (response.headers.get("retry-after") == "1") == (kind == "TRANSIENT")
    assert server.name == f"GET {path}" and server.attributes["http.response.status_code"] == status
    assert server.status.status_code is StatusCode.ERROR


async def test_logged_at_the_kinds_level(spans, caplog):
    caplog.set_level(logging.DEBUG, logger="tracectx.http")
    await get(make_app(), "/busy")
    await get(make_app(), "/fatal")
    levels = [r.levelno for r in caplog.records if r.name == "tracectx.http"]
    assert levels == [logging.WARNING, logging.CRITICAL]
    assert all(len(r.trace_id) == 32 for r in caplog.records if r.name == "tracectx.http")


async def test_continues_callers_trace_and_binds_request_id(spans):
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    response = await get(
        make_app(), "/items/7", headers={"traceparent": traceparent, "x-request-id": "req-1"}
    )
    assert response.status_code == 200
    assert response.json() == {"item": "7", "bound": {"request_id": "req-1"}}
    server = by_name(spans, "GET /items/{item_id}")
    assert hex_trace(server) == "0af7651916cd43dd8448eb211c80319c"
    assert format(server.parent.span_id, "016x") == "b7ad6b7169203331"
    assert server.attributes["http.route"] == "/items/{item_id}"
    assert server.status.status_code is StatusCode.UNSET


@pytest.mark.parametrize(
    "headers",
    [
        {"traceparent": "00-zzzz-garbage-01"},
        {"traceparent": "ff-" + "0" * 32 + "-" + "0" * 16 + "-01"},
        {"baggage": "k=" + "v" * 20_000, "traceparent": "x" * 10_000},
        {"baggage": ",,,=;;;=%%%"},
    ],
)
async def test_hostile_headers_fresh_root(spans, headers):
    response = await get(make_app(), "/items/1", headers=headers)
    assert response.status_code == 200 and response.json()["bound"] == {}
    server = by_name(spans, "GET /items/{item_id}")
    assert server.parent is None


async def test_instrumentor_adds_middleware_to_new_apps(spans):
    instrumentor = AsgiInstrumentor()
    instrumentor.instrument()
    try:
        app = Starlette(routes=[Route("/pay", business)])
    finally:
        instrumentor.uninstrument()
    response = await get(app, "/pay")
    assert response.status_code == 400 and response.json()["code"] == "E42"
    assert Starlette(routes=[]).user_middleware == []


async def test_a_5xx_answered_by_the_app_marks_the_span(spans):
    async def broken(request):
        return JSONResponse({"error": "upstream"}, status_code=502)

    app = Starlette(routes=[Route("/up", broken)])
    app.add_middleware(TracectxMiddleware)
    assert (await get(app, "/up")).status_code == 502
    server = by_name(spans, "GET /up")
    assert server.status.status_code is StatusCode.ERROR
    assert server.status.description == "HTTP 502"
    assert sc.ATTR_ID not in server.attributes


async def test_problem_type_base_configurable(spans):
    response = await get(make_app(type_base="https://errors.example.com/"), "/pay")
    assert response.json()["type"] == "https://errors.example.com/E42"


async def test_error_after_response_started_is_recorded_not_answered(spans):
    async def streaming(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise new_error(ErrorKind.TRANSIENT, "stream broke")

    app = TracectxMiddleware(streaming)
    with pytest.raises(Exception, match="stream broke"):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            await client.get("/")
    server = by_name(spans, "GET")
    assert server.attributes[sc.ATTR_KIND] == "TRANSIENT"
    assert server.attributes["http.response.status_code"] == 200  # what the client got
