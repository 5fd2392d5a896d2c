"""tracectx for ASGI (Starlette, FastAPI): request spans in the caller's trace, errors answered
as RFC 9457 ``application/problem+json`` with the status of their kind.

    app.add_middleware(TracectxMiddleware)          # Starlette / FastAPI
    app = TracectxMiddleware(app)                   # any ASGI app
    AsgiInstrumentor().instrument()                 # every Starlette app created afterwards

``opentelemetry-instrument`` finds `AsgiInstrumentor` through the ``tracectx_asgi`` entry point;
without Starlette installed, importing this package raises `ModuleNotFoundError`, which OTel's
loader skips quietly.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

try:
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
except ModuleNotFoundError as exc:  # pragma: no cover - exercised in a subprocess by the tests
    raise ModuleNotFoundError(
        "tracectx_asgi needs Starlette: pip install 'tracectx[asgi]'", name=exc.name
    ) from exc

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]

from tracectx.patching import Patches
from tracectx_asgi.middleware import TracectxMiddleware
from tracectx_asgi.package import _instruments
from tracectx_asgi.problem import CONTENT_TYPE, problem_for

__all__ = ["CONTENT_TYPE", "OPTIONS", "AsgiInstrumentor", "TracectxMiddleware", "problem_for"]

#: Keyword arguments `AsgiInstrumentor.instrument` accepts (passed on to the middleware).
OPTIONS = frozenset({"type_base", "request_id_headers", "tracer_provider"})
# Consumed by `BaseInstrumentor.instrument` itself (``opentelemetry-instrument`` passes them).
_BASE_OPTIONS = frozenset({"skip_dep_check", "raise_exception_on_conflict"})
_patches = Patches()


def _check_options(options: Mapping[str, Any]) -> None:
    unknown = sorted(set(options) - OPTIONS - _BASE_OPTIONS)
    if unknown:
        raise TypeError(
            f"AsgiInstrumentor.instrument() got unknown option(s) {', '.join(map(repr, unknown))}"
            f"; accepted: {', '.join(sorted(OPTIONS))}"
        )


class AsgiInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Add `TracectxMiddleware` as the outermost user middleware of every new Starlette app
    (inside Starlette's own error middleware, so problem+json answers reach the client).
    Keyword args are the middleware's (``type_base``, ``request_id_headers``,
    ``tracer_provider``); anything else is a `TypeError`."""

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def instrument(self, **kwargs: Any) -> Any:
        """Check the options first, so a misspelt one fails even when already instrumented."""
        _check_options(kwargs)
        return super().instrument(**kwargs)

    def _instrument(self, **kwargs: Any) -> None:
        options = dict(kwargs)
        _check_options(options)

        def init(wrapped: Any, app: Starlette, args: tuple[Any, ...], kw: dict[str, Any]) -> None:
            wrapped(*args, **kw)
            if not any(m.cls is TracectxMiddleware for m in app.user_middleware):  # type: ignore[comparison-overlap]
                app.user_middleware.insert(0, Middleware(TracectxMiddleware, **options))

        _patches.wrap(Starlette, "__init__", init)

    def _uninstrument(self, **kwargs: Any) -> None:
        _patches.undo()
