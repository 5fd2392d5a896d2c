"""tracectx for ASGI (Starlette, FastAPI): request spans in the caller's trace, errors answered
as RFC 9457 ``application/problem+json`` with the status of their kind.

    app.add_middleware(TracectxMiddleware)          # Starlette / FastAPI
    app = TracectxMiddleware(app)                   # any ASGI app
    AsgiInstrumentor().instrument()                 # every Starlette app created afterwards

``opentelemetry-instrument`` finds `AsgiInstrumentor` through the ``tracectx_asgi`` entry point.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

try:
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
except ImportError as exc:  # pragma: no cover - exercised by the packaging test
    raise ImportError("tracectx_asgi needs Starlette: pip install 'tracectx[asgi]'") from exc

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]

from tracectx_asgi.middleware import TracectxMiddleware
from tracectx_asgi.package import _instruments
from tracectx_asgi.problem import CONTENT_TYPE, problem_for

__all__ = ["CONTENT_TYPE", "AsgiInstrumentor", "TracectxMiddleware", "problem_for"]


class AsgiInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Add `TracectxMiddleware` as the outermost user middleware of every new Starlette app
    (inside Starlette's own error middleware, so problem+json answers reach the client)."""

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def _instrument(self, **kwargs: Any) -> None:
        original = Starlette.__init__
        options = dict(kwargs)

        def __init__(app: Starlette, *args: Any, **kw: Any) -> None:
            original(app, *args, **kw)
            if not any(m.cls is TracectxMiddleware for m in app.user_middleware):  # type: ignore[comparison-overlap]
                app.user_middleware.insert(0, Middleware(TracectxMiddleware, **options))

        __init__._tracectx_original = original  # type: ignore[attr-defined]
        Starlette.__init__ = __init__  # type: ignore[method-assign,assignment]

    def _uninstrument(self, **kwargs: Any) -> None:
        original = getattr(Starlette.__init__, "_tracectx_original", None)
        if original is not None:
            Starlette.__init__ = original  # type: ignore[method-assign]
