"""``tracectx demo``: a small real pipeline with faults of every kind, then its error graph.

HTTP entry (Starlette + `TracectxMiddleware`) → thread pool → asyncio tasks → Celery (embedded
worker) → Kafka (embedded tansu broker) → a consumer that fails → DLQ. It lives outside the
core because it uses every integration; the core's CLI imports it by name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tracectx_demo.options import DemoOptions
    from tracectx_demo.run import run_demo

__all__ = ["DemoOptions", "run_demo"]


def __getattr__(name: str) -> Any:
    """Imported on first use (PEP 562): the ``tracectx`` CLI imports this package to register
    ``demo`` on every run, and `run_demo` imports every integration (~0.8 s)."""
    if name == "DemoOptions":
        from tracectx_demo.options import DemoOptions

        return DemoOptions
    if name == "run_demo":
        from tracectx_demo.run import run_demo

        return run_demo
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
