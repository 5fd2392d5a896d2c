"""Per-hop cost of thread-pool and asyncio hops: plain vs tracectx vs OTel's ThreadingInstrumentor.

Each op is submit + result (threads) or create_task + await (asyncio), inside an active span so
there is a context to carry. Propagation only: no span per hop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from bench.harness import per_op, report
from tracectx.aio import create_task
from tracectx.executors import ContextThreadPoolExecutor

OPS = 20_000


def _noop() -> int:
    return 1


def thread_hop(pool: concurrent.futures.Executor) -> float:
    def run(n: int) -> None:
        for _ in range(n):
            pool.submit(_noop).result()

    return per_op(run, OPS) * 1e6


def task_hop(make_task) -> float:  # type: ignore[no-untyped-def]
    async def work() -> int:
        return 1

    async def loop_body(n: int) -> None:
        for _ in range(n):
            await make_task(work())

    def run(n: int) -> None:
        asyncio.run(loop_body(n))

    return per_op(run, OPS) * 1e6


def main() -> None:
    trace.set_tracer_provider(TracerProvider())
    tracer = trace.get_tracer("bench")
    rows = []
    with tracer.start_as_current_span("request"):
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            rows.append(
                {"case": "thread pool hop", "variant": "plain", "us_per_op": thread_hop(pool)}
            )
        with ContextThreadPoolExecutor(1) as pool:
            rows.append(
                {"case": "thread pool hop", "variant": "tracectx", "us_per_op": thread_hop(pool)}
            )
        from opentelemetry.instrumentation.threading import ThreadingInstrumentor

        ThreadingInstrumentor().instrument()
        try:
            with concurrent.futures.ThreadPoolExecutor(1) as pool:
                rows.append(
                    {
                        "case": "thread pool hop",
                        "variant": "otel-threading",
                        "us_per_op": thread_hop(pool),
                    }
                )
        finally:
            ThreadingInstrumentor().uninstrument()
        rows.append(
            {
                "case": "asyncio task hop",
                "variant": "plain",
                "us_per_op": task_hop(asyncio.create_task),
            }
        )
        rows.append(
            {"case": "asyncio task hop", "variant": "tracectx", "us_per_op": task_hop(create_task)}
        )
        rows.append(
            {
                "case": "asyncio task hop",
                "variant": "tracectx span/task",
                "us_per_op": task_hop(lambda c: create_task(c, span="t")),
            }
        )
    report("hops", rows, baseline="plain")


if __name__ == "__main__":
    main()
