"""``tracectx demo``: a small real pipeline with faults of every kind, then its error graph.

HTTP entry (Starlette + `TracectxMiddleware`) → thread pool → asyncio tasks → Celery (embedded
worker) → Kafka (embedded tansu broker) → a consumer that fails → DLQ. It lives outside the
core because it uses every integration; the core's CLI imports it by name.
"""

from tracectx_demo.options import DemoOptions
from tracectx_demo.run import run_demo

__all__ = ["DemoOptions", "run_demo"]
