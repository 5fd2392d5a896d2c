"""The ASGI middleware through httpx's ASGI transport on a Starlette app: statuses,
problem+json bodies, no leaks, the caller's trace continued, hostile headers survived."""

from __future__ import annotations

import logging

import httpx
import pytest
import structlog
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

import tracectx
from tests.helpers import by_name, hex_trace
from tests.integration.asgi.missing_dependency import run_loader_without
from tracectx import ErrorKind, bind, configure, get_bound, new_error, register_kind
from tracectx import semconv as sc
from tracectx.safetext import has_control
from tracectx_asgi import AsgiInstrumentor, TracectxMiddleware
from tracectx_asgi.middleware import MAX_LOGGED_PATH

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
    # the whole card number: "4111" alone turns up in a random hex trace id about once in 1,500 responses
    for leak in (SECRET, "Traceback", "4111111111111111", "card_number", "account_id", 'File "'):
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


def failing_app() -> TracectxMiddleware:
    """A bare ASGI app (no router, so any path reaches it, newlines included): ``/fail/...``
    raises, anything else answers with the structlog bindings and the bound metadata."""
    echo_app = Starlette(routes=[Route("/{rest:path}", echo)])

    async def app(scope, receive, send):
        if scope["path"].startswith("/fail/"):
            raise ValueError("no such thing")
        await echo_app(scope, receive, send)

    return TracectxMiddleware(app)


async def echo(request):
    return JSONResponse({"log": structlog.contextvars.get_contextvars(), "bound": get_bound()})


FORGED_TAIL = "2026-01-01 00:00:00 CRITICAL app FORGED: payout to acc_EVIL approved"


class TestLogForging:
    async def test_crafted_path_cannot_start_a_log_line(self, spans, caplog):
        caplog.set_level(logging.DEBUG, logger="tracectx.http")
        response = await get(failing_app(), "/fail/x%0A" + FORGED_TAIL.replace(" ", "%20"))
        assert response.status_code == 500
        (record,) = [r for r in caplog.records if r.name == "tracectx.http"]
        message = record.getMessage()
        assert "\n" not in message and "\\n" + FORGED_TAIL in message
        server = next(s for s in spans.get_finished_spans() if s.kind is SpanKind.SERVER)
        assert server.attributes["url.path"] == "/fail/x\n" + FORGED_TAIL  # the real path

    async def test_control_characters_and_length_bounded_in_structlog_binding(self, spans):
        response = await get(failing_app(), "/echo/%1B]0;pwned%07%E2%80%AE" + "a" * 5000)
        logged = response.json()["log"]["http_path"]
        assert not has_control(logged) and "\\x1b]0;pwned\\x07\\u202e" in logged
        assert len(logged) < MAX_LOGGED_PATH + 40
        server = next(s for s in spans.get_finished_spans() if s.kind is SpanKind.SERVER)
        assert len(server.attributes["url.path"]) > 5000

    async def test_long_path_logged_bounded(self, spans, caplog):
        caplog.set_level(logging.DEBUG, logger="tracectx.http")
        await get(failing_app(), "/fail/" + "b" * 20_000)
        (record,) = [r for r in caplog.records if r.name == "tracectx.http"]
        assert len(record.getMessage()) < MAX_LOGGED_PATH + 100

    async def test_request_id_bound_escaped(self, spans):
        response = await get(failing_app(), "/echo/x", headers={"x-request-id": b"r1\x1b[2J\x85"})
        assert response.json()["bound"] == {"request_id": "r1\\x1b[2J\\x85"}


class TestInstrumentorOptions:
    async def test_tracer_provider_honoured_and_tracer_named(self, spans):
        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        instrumentor = AsgiInstrumentor()
        instrumentor.instrument(tracer_provider=provider)
        try:
            app = Starlette(routes=[Route("/pay", business)])
        finally:
            instrumentor.uninstrument()
        response = await get(app, "/pay")
        assert response.status_code == 400
        (server,) = exporter.get_finished_spans()
        assert server.name == "GET /pay" and server.attributes[sc.ATTR_KIND] == "BUSINESS"
        assert server.instrumentation_scope.name == "tracectx_asgi"
        assert server.instrumentation_scope.version == tracectx.__version__
        assert not [s for s in spans.get_finished_spans() if s.kind is SpanKind.SERVER]

    def test_unknown_option_refused_by_name(self):
        instrumentor = AsgiInstrumentor()
        try:
            with pytest.raises(TypeError, match="'type_bse'"):
                instrumentor.instrument(type_bse="https://errors.example.com/")
            assert Starlette(routes=[]).user_middleware == []  # nothing was patched
            instrumentor.instrument()
            # refused even when already instrumented (BaseInstrumentor would only warn)
            with pytest.raises(TypeError, match="'request_id_header'"):
                instrumentor.instrument(request_id_header=["x-id"])
        finally:
            instrumentor.uninstrument()

    def test_patch_keeps_init_and_uninstrument_mirrors_instrument(self):
        """The Starlette patch is a `tracectx.patching` wrapper: ``__init__`` keeps its doc,
        signature and ``__wrapped__``; uninstrument puts back the very object it replaced."""
        import inspect

        from tracectx.patching import is_patched

        before = vars(Starlette)["__init__"]
        instrumentor = AsgiInstrumentor()
        instrumentor.instrument()
        try:
            patched = vars(Starlette)["__init__"]
            assert is_patched(Starlette, "__init__") and patched is not before
            assert patched.__wrapped__ is before
            assert Starlette.__init__.__doc__ == before.__doc__
            assert Starlette.__init__.__name__ == "__init__"
            assert inspect.signature(Starlette.__init__) == inspect.signature(before)
        finally:
            instrumentor.uninstrument()
        assert vars(Starlette)["__init__"] is before and not is_patched(Starlette, "__init__")
        instrumentor.instrument()  # and again: one wrapper, not two
        try:
            assert vars(Starlette)["__init__"].__wrapped__ is before
            assert len(Starlette(routes=[]).user_middleware) == 1
        finally:
            instrumentor.uninstrument()
        assert vars(Starlette)["__init__"] is before

    def test_middleware_refuses_unknown_option(self):
        with pytest.raises(TypeError, match="type_bse"):
            TracectxMiddleware(ok, type_bse="x")  # type: ignore[call-arg]


FORGED_BAGGAGE = "tracectx.bound=account_id,role,account_id=acc_VICTIM,role=admin"


class TestForgedMetadata:
    async def test_no_metadata_from_baggage_without_allowlist(self, spans):
        response = await get(failing_app(), "/echo/x", headers={"baggage": FORGED_BAGGAGE})
        assert response.json()["bound"] == {}

    async def test_error_span_carries_no_forged_metadata(self, spans):
        response = await get(failing_app(), "/fail/x", headers={"baggage": FORGED_BAGGAGE})
        assert response.status_code == 500
        server = next(s for s in spans.get_finished_spans() if s.kind is SpanKind.SERVER)
        assert server.attributes[sc.ATTR_ROLE] == sc.ROLE_ORIGIN
        meta = {k: v for k, v in server.attributes.items() if k.startswith(sc.ATTR_META_PREFIX)}
        assert meta == {}
        assert "acc_VICTIM" not in response.text

    async def test_only_allowlisted_keys_trusted(self, spans):
        configure(baggage_allowlist=["tenant_id"])
        headers = {"baggage": FORGED_BAGGAGE + ",tenant_id=t_9"}
        response = await get(failing_app(), "/echo/x", headers=headers)
        assert response.json()["bound"] == {"tenant_id": "t_9"}
        await get(failing_app(), "/fail/x", headers=headers)
        failed = [s for s in spans.get_finished_spans() if s.attributes.get(sc.ATTR_ROLE)]
        meta = {k: v for k, v in failed[0].attributes.items() if k.startswith(sc.ATTR_META_PREFIX)}
        assert meta == {sc.ATTR_META_PREFIX + "tenant_id": "t_9"}


class TestContextHygiene:
    @pytest.mark.parametrize("raises", [False, True], ids=["returns", "raises"])
    async def test_handler_binding_does_not_outlive_the_request(self, spans, raises):
        async def dirty(request):
            bind(leaked="yes")  # plain call, never undone by the handler
            otel_context.attach(otel_context.set_value("leaked", "yes"))
            if raises:
                raise ValueError("after binding")
            return JSONResponse(get_bound())

        app = Starlette(routes=[Route("/dirty", dirty)])
        app.add_middleware(TracectxMiddleware)
        before = otel_context.get_current()
        response = await get(app, "/dirty", headers={"x-request-id": "r-1"})
        assert response.status_code == (500 if raises else 200)
        assert otel_context.get_current() == before
        assert get_bound() == {} and not trace.get_current_span().get_span_context().is_valid
        assert structlog.contextvars.get_contextvars() == {}


def test_without_starlette_the_loader_skips_quietly():
    """``opentelemetry-instrument`` without Starlette: ModuleNotFoundError, logged at DEBUG by
    OTel's loader (an ImportError would be logged with a full traceback on every start)."""
    result = run_loader_without("tracectx_asgi", "starlette")
    assert result["error"] == "ModuleNotFoundError", result
    assert result["logged"] == [], result
