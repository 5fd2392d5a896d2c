"""Per-hop cost of thread-pool and asyncio hops, interleaved: plain vs tracectx vs OTel.

Each op is submit + result (threads) or create_task + await (asyncio), inside an active span so
there is a context to carry. Thread hops: plain `ThreadPoolExecutor`, tracectx's
`ContextThreadPoolExecutor`, OTel's `ThreadingInstrumentor` (instrumented only for its own turn
of each round), and the floor `copy_context().run`. Task hops: plain `asyncio.create_task`,
`tracectx.aio.create_task`, and a span per task. Process CPU time (pool workers included).

    python -m bench.bench_hops [--ops 5000] [--rounds 30]
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextvars
from collections.abc import Callable, Coroutine
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from bench.harness import Variant, interleave, report, rows_of
from tracectx.aio import create_task
from tracectx.executors import ContextThreadPoolExecutor


def _noop() -> int:
    return 1


def thread_hop(pool: concurrent.futures.Executor, wrap: bool = False) -> Callable[[int], None]:
    def run(n: int) -> None:
        for _ in range(n):
            if wrap:
                pool.submit(contextvars.copy_context().run, _noop).result()
            else:
                pool.submit(_noop).result()

    return run


def task_hop(make_task: Callable[[Coroutine[Any, Any, int]], Any]) -> Callable[[int], None]:
    async def work() -> int:
        return 1

    async def body(n: int) -> None:
        tracer = trace.get_tracer("bench")
        with tracer.start_as_current_span("request"):
            for _ in range(n):
                await make_task(work())

    def run(n: int) -> None:
        asyncio.run(body(n))

    return run


def thread_variants(workers: int) -> tuple[list[Variant], list[concurrent.futures.Executor]]:
    from opentelemetry.instrumentation.threading import ThreadingInstrumentor

    plain = concurrent.futures.ThreadPoolExecutor(workers)
    ours = ContextThreadPoolExecutor(workers)
    otel_pool = concurrent.futures.ThreadPoolExecutor(workers)
    otel = ThreadingInstrumentor()
    return [
        Variant("plain", thread_hop(plain)),
        Variant("copy_context floor", thread_hop(plain, wrap=True)),
        Variant("tracectx", thread_hop(ours)),
        Variant(
            "otel-threading",
            thread_hop(otel_pool),
            setup=otel.instrument,
            teardown=otel.uninstrument,
        ),
    ], [plain, ours, otel_pool]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=5_000)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    trace.set_tracer_provider(TracerProvider())
    tracer = trace.get_tracer("bench")
    rows = []
    with tracer.start_as_current_span("request"):
        for workers in (1, 4):
            variants, pools = thread_variants(workers)
            try:
                outcomes = interleave(variants, args.ops, rounds=args.rounds)
            finally:
                for pool in pools:
                    pool.shutdown()
            rows += rows_of(f"thread pool hop ({workers} w)", outcomes)
    task_variants = [
        Variant("plain", task_hop(asyncio.create_task)),
        Variant("tracectx", task_hop(create_task)),
        Variant("tracectx span/task", task_hop(lambda c: create_task(c, span="t"))),
    ]
    rows += rows_of("asyncio task hop", interleave(task_variants, args.ops, rounds=args.rounds))
    report("hops", rows, baseline="plain")


if __name__ == "__main__":
    main()
