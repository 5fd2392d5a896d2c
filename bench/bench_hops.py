"""Per-hop cost of thread-pool and asyncio hops, interleaved: plain vs tracectx vs OTel.

Each op is submit + result (threads) or create_task + await (asyncio), inside an active span so
there is a context to carry. Thread hops: plain `ThreadPoolExecutor`, tracectx's
`ContextThreadPoolExecutor`, OTel's `ThreadingInstrumentor` (instrumented only for its own turn
of each round), and the floor `copy_context().run`. Task hops, serial (create_task + await, one
at a time) and fan-out (create `FAN_OUT` tasks, then gather them): plain `asyncio.create_task`,
`tracectx.aio.create_task`, a span per task (``span=``), and its floor: the bare SDK span per
task, started at creation and ended by a done callback (so, in a fan-out, as many spans are alive
at once as with ``span=``, and the garbage collector sees them), not even made current in the
task. Process CPU time (pool workers included).

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


FAN_OUT = 100  # tasks created before the gather that awaits them


async def _work() -> int:
    return 1


def _sdk_span_task(tracer: trace.Tracer) -> Callable[[Coroutine[Any, Any, int]], Any]:
    """A plain task with a bare SDK span that lives as long as the task: the floor of span=."""

    def make(coro: Coroutine[Any, Any, int]) -> asyncio.Task[int]:
        span = tracer.start_span("t")
        task = asyncio.create_task(coro)
        task.add_done_callback(lambda _: span.end())
        return task

    return make


def task_hop(
    make_task: Callable[[Coroutine[Any, Any, int]], Any], fan_out: int = 1
) -> Callable[[int], None]:
    async def body(n: int) -> None:
        tracer = trace.get_tracer("bench")
        with tracer.start_as_current_span("request"):
            if fan_out == 1:
                for _ in range(n):
                    await make_task(_work())
                return
            for done in range(0, n, fan_out):
                batch = min(fan_out, n - done)
                await asyncio.gather(*[make_task(_work()) for _ in range(batch)])

    def run(n: int) -> None:
        asyncio.run(body(n))

    return run


def task_variants(fan_out: int) -> list[Variant]:
    return [
        Variant("plain", task_hop(asyncio.create_task, fan_out=fan_out)),
        Variant("tracectx", task_hop(create_task, fan_out=fan_out)),
        Variant(
            "tracectx span/task",
            task_hop(lambda c: create_task(c, span="t"), fan_out=fan_out),
        ),
        Variant(
            "SDK span floor",
            task_hop(_sdk_span_task(trace.get_tracer("bench-floor")), fan_out=fan_out),
        ),
    ]


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
    for case, fan_out in (("asyncio task hop", 1), (f"asyncio fan-out ({FAN_OUT})", FAN_OUT)):
        rows += rows_of(case, interleave(task_variants(fan_out), args.ops, rounds=args.rounds))
    report("hops", rows, baseline="plain")


if __name__ == "__main__":
    main()
