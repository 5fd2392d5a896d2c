"""The ASGI middleware: a SERVER span per request in the caller's trace, errors answered as
problem+json with the status of their kind.

Incoming ``traceparent``/``baggage`` go through tracectx's extraction (bounded baggage; a bad
header gives a fresh root; baggage becomes metadata only for keys on the service's
``baggage_allowlist``). ``x-request-id`` (configurable) is bound as metadata, so errors and logs
of the request carry it. An error escaping the app is recorded on the span, logged at its kind's
level, and — if no response has started — answered per `problem_for`. Text from the request
(path, method, request id) is logged and bound for structlog only with control characters
escaped and its length bounded, so a crafted path cannot forge a log line; the span keeps the
real ``url.path``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping, MutableMapping, Sequence
from typing import Any

import structlog
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode, TracerProvider

from tracectx import __version__, bound, classify, error_id, policy_for, record_error
from tracectx.propagation import extract
from tracectx.safetext import escape_control
from tracectx_asgi.headers import request_headers
from tracectx_asgi.problem import CONTENT_TYPE, problem_for

__all__ = ["MAX_LOGGED_PATH", "MAX_REQUEST_ID", "TRACER_NAME", "TracectxMiddleware"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

TRACER_NAME = "tracectx_asgi"
MAX_REQUEST_ID = 128
#: Characters of the request path written to logs and structlog (before escaping).
MAX_LOGGED_PATH = 256
MAX_LOGGED_METHOD = 16
_log = logging.getLogger("tracectx.http")


class TracectxMiddleware:
    """``app.add_middleware(TracectxMiddleware)`` (Starlette/FastAPI) or wrap any ASGI app.

    Args:
        type_base: prefix of the problem ``type`` URI; the error code is appended.
        request_id_headers: request headers bound as ``request_id`` metadata (first found).
        tracer_provider: where the request spans go (default: the global provider, looked up
            when the middleware is built, not when this module is imported).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        type_base: str = "urn:tracectx:problem:",
        request_id_headers: Sequence[str] = ("x-request-id",),
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        self.app = app
        self.type_base = type_base
        self.request_id_headers = tuple(h.lower() for h in request_id_headers)
        self._tracer = trace.get_tracer(TRACER_NAME, __version__, tracer_provider=tracer_provider)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        headers = request_headers(scope)
        parent = extract(headers, transport="http")
        method = str(scope.get("method", "GET"))
        path = str(scope.get("path", ""))
        span = self._tracer.start_span(
            method,
            context=parent,
            kind=SpanKind.SERVER,
            attributes={
                "http.request.method": method,
                "url.path": path,
                "url.scheme": str(scope.get("scheme", "http")),
                "network.protocol.version": str(scope.get("http_version", "1.1")),
            },
        )
        logged_method = escape_control(method, MAX_LOGGED_METHOD)
        logged_path = escape_control(path, MAX_LOGGED_PATH)
        request_id = next((headers[h] for h in self.request_id_headers if h in headers), None)
        started = False
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal started, status
            if message["type"] == "http.response.start":
                started, status = True, int(message["status"])
            await send(message)

        token = otel_context.attach(trace.set_span_in_context(span, parent))
        log_tokens: Mapping[str, Any] = {}
        try:
            log_tokens = structlog.contextvars.bind_contextvars(
                http_method=logged_method, http_path=logged_path
            )
            if request_id:
                with bound(request_id=escape_control(request_id, MAX_REQUEST_ID)):
                    await self.app(scope, receive, send_wrapper)
            else:
                await self.app(scope, receive, send_wrapper)
        except Exception as exc:
            record_error(exc, span)
            self._log(exc, logged_method, logged_path, span)
            if started:
                raise
            status = await self._answer(exc, path, span, send)
        finally:
            try:
                self._finish(span, scope, method, status)
            finally:
                structlog.contextvars.reset_contextvars(**log_tokens)
                otel_context.detach(token)

    async def _answer(self, exc: BaseException, path: str, span: Any, send: Send) -> int:
        trace_id = format(span.get_span_context().trace_id, "032x")
        status, body, extra = problem_for(
            exc, instance=path, trace_id=trace_id, type_base=self.type_base
        )
        payload = json.dumps(body, ensure_ascii=False).encode()
        headers = [
            (b"content-type", CONTENT_TYPE.encode()),
            (b"content-length", str(len(payload)).encode()),
            *((k.encode(), v.encode()) for k, v in extra.items()),
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})
        return status

    @staticmethod
    def _log(exc: BaseException, method: str, path: str, span: Any) -> None:
        """Log the failure; `method` and `path` are already escaped and bounded."""
        kind = classify(exc)
        ctx = span.get_span_context()
        _log.log(
            policy_for(kind).log_level,
            "%s %s failed: %s %s",
            method,
            path,
            kind.name,
            escape_control(type(exc).__name__, MAX_LOGGED_PATH),  # remote class names are data
            exc_info=exc,
            extra={
                "trace_id": format(ctx.trace_id, "032x"),
                "span_id": format(ctx.span_id, "016x"),
                "error_id": error_id(exc),
                "error_kind": kind.name,
            },
        )

    @staticmethod
    def _finish(span: Any, scope: Scope, method: str, status: int) -> None:
        try:
            route = getattr(scope.get("route"), "path", None)
            if isinstance(route, str):
                span.update_name(f"{method} {route}")
                span.set_attribute("http.route", route)
            span.set_attribute("http.response.status_code", status)
            if status >= 500 and span.status.status_code is StatusCode.UNSET:
                span.set_status(Status(StatusCode.ERROR, f"HTTP {status}"))
        finally:
            span.end()
