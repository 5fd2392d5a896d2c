"""Per-hop cost of thread-pool and asyncio hops, interleaved: plain vs tracectx vs OTel.

Each op is submit + result (threads) or create_task + await (asyncio), inside an active span so
there is a context to carry. Thread hops: plain `ThreadPoolExecutor`, tracectx's
`ContextThreadPoolExecutor`, OTel's `ThreadingInstrumentor` (instrumented only for its own turn
of each round), and the floor `copy_context().run`. Task hops, serial (create_task + await, one
at a time) and fan-out (create `FAN_OUT` tasks, then gather them): plain `asyncio.create_task`,
`tracectx.aio.create_task`, a span per task (``span=``), and its floor: the bare SDK span per
task, started at creation and ended by a done callback (so, in a fan-out, as many spans are alive
at once as with ``span=``, and the garbage collector sees them), not even made current in the
task. Thread hops also have ``zero-code``: a plain pool with `tracectx.hooks.instrument()`
installed for its turn (what ``opentelemetry-instrument`` users get). Process CPU time (pool
workers included).

Sampling: the global provider samples ``ParentBased(TraceIdRatioBased(0.01))``, as production
does. Each run opens one request span: the recorded variants open it with an always-on
provider (so everything under it is sampled, as ParentBased follows the parent), the ``@1%``
variants with the global one, so 99 % of their runs are sampled out — each span-mode row has a
1 % row beside it (and a ``traced`` call case, against a plain call).

    python -m bench.bench_hops [--ops 5000] [--rounds 30]

Instruction counts instead of time (all threads; see `bench.harness.instructions_per_op`),
settling differences wall time cannot resolve; a ``@1%`` variant counted this way draws its
request span until one is sampled out, so the count is the sampled-out cost:

    python -m bench.bench_hops --instructions [--ops 2000] [--cases "thread pool hop (1 w)"]
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextvars
import functools
from collections.abc import Callable, Coroutine
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

from bench.harness import Variant, count_table, interleave, report, rows_of
from tracectx import hooks
from tracectx.aio import create_task
from tracectx.executors import ContextThreadPoolExecutor
from tracectx.recording import traced

RATIO = 0.01
_COUNTING = False  # --count: a @1% variant's request span is drawn until sampled out
# Request spans of recorded variants: an always-on provider, so ParentBased samples their children.
_ALWAYS = TracerProvider()


def request_span(sampled: bool) -> Any:
    """The request span a run works in: sampled (always-on provider) or drawn at `RATIO` from
    the global provider (in --count mode, drawn until it is sampled out)."""
    if sampled:
        return _ALWAYS.get_tracer("bench").start_as_current_span("request")
    tracer = trace.get_tracer("bench")
    while True:
        span = tracer.start_span("request")
        if not (_COUNTING and span.is_recording()):
            return trace.use_span(span, end_on_exit=True)
        span.end()


def _noop() -> int:
    return 1


def thread_hop(pool: concurrent.futures.Executor, wrap: bool = False) -> Callable[[int], None]:
    def run(n: int) -> None:
        with request_span(True):
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
    make_task: Callable[[Coroutine[Any, Any, int]], Any], fan_out: int = 1, sampled: bool = True
) -> Callable[[int], None]:
    async def body(n: int) -> None:
        with request_span(sampled):
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
    span_task: Callable[[Coroutine[Any, Any, int]], Any] = lambda c: create_task(c, span="t")  # noqa: E731
    floor = _sdk_span_task(trace.get_tracer("bench-floor"))
    return [
        Variant("plain", task_hop(asyncio.create_task, fan_out=fan_out)),
        Variant("tracectx", task_hop(create_task, fan_out=fan_out)),
        Variant("tracectx span/task", task_hop(span_task, fan_out=fan_out)),
        Variant("SDK span floor", task_hop(floor, fan_out=fan_out)),
        Variant("tracectx span/task @1%", task_hop(span_task, fan_out=fan_out, sampled=False)),
        Variant("SDK span floor @1%", task_hop(floor, fan_out=fan_out, sampled=False)),
    ]


def _add(a: int, b: int) -> int:
    return a + b


_traced_add = traced(_add)
_otel_tracer = trace.get_tracer("bench-otel")


@functools.wraps(_add)
def _passthrough_add(*args: Any, **kwargs: Any) -> int:
    """The floor of any decorator: a pass-through wrapper, as `traced` is shaped."""
    return _add(*args, **kwargs)


@functools.wraps(_add)
def _sampled_check_add(*args: Any, **kwargs: Any) -> int:
    """A sampled-out check through the OTel API: the pass-through plus `get_current_span()`
    (tracectx reads the span from the context variable directly)."""
    trace.get_current_span()
    return _add(*args, **kwargs)


def _otel_add(a: int, b: int) -> int:
    with _otel_tracer.start_as_current_span("_add"):
        return a + b


def call_loop(fn: Callable[[int, int], int], sampled: bool) -> Callable[[int], None]:
    def run(n: int) -> None:
        with request_span(sampled):
            for i in range(n):
                fn(i, 1)

    return run


def call_variants() -> list[Variant]:
    """A plain call vs `traced` on it, recorded and at 1 %, with the SDK span floor."""
    return [
        Variant("plain", call_loop(_add, True)),
        Variant("tracectx traced", call_loop(_traced_add, True)),
        Variant("SDK span floor", call_loop(_otel_add, True)),
        Variant("tracectx traced @1%", call_loop(_traced_add, False)),
        Variant("SDK span floor @1%", call_loop(_otel_add, False)),
        Variant("pass-through decorator", call_loop(_passthrough_add, False)),
        Variant("decorator + get_current_span", call_loop(_sampled_check_add, False)),
    ]


def thread_variants(workers: int) -> tuple[list[Variant], list[concurrent.futures.Executor]]:
    from opentelemetry.instrumentation.threading import ThreadingInstrumentor

    plain = concurrent.futures.ThreadPoolExecutor(workers)
    ours = ContextThreadPoolExecutor(workers)
    otel_pool = concurrent.futures.ThreadPoolExecutor(workers)
    zero_pool = concurrent.futures.ThreadPoolExecutor(workers)
    otel = ThreadingInstrumentor()
    return [
        Variant("plain", thread_hop(plain)),
        Variant("copy_context floor", thread_hop(plain, wrap=True)),
        Variant("tracectx", thread_hop(ours)),
        Variant(
            "tracectx zero-code",
            thread_hop(zero_pool),
            setup=hooks.instrument,
            teardown=hooks.uninstrument,
        ),
        Variant(
            "otel-threading",
            thread_hop(otel_pool),
            setup=otel.instrument,
            teardown=otel.uninstrument,
        ),
    ], [plain, ours, otel_pool, zero_pool]


CASES = ("thread pool hop (1 w)", "thread pool hop (4 w)", "asyncio task hop",
         f"asyncio fan-out ({FAN_OUT})", "traced call")  # fmt: skip


def case_variants(case: str) -> tuple[list[Variant], list[concurrent.futures.Executor]]:
    if case.startswith("thread pool hop"):
        return thread_variants(1 if "(1 w)" in case else 4)
    if case == "traced call":
        return call_variants(), []
    return task_variants(FAN_OUT if "fan-out" in case else 1), []


def count_one(case: str, variant: str, ops: int) -> None:
    """--count: run `variant` of `case` once for `ops` ops (after a short warm-up), untimed."""
    global _COUNTING
    _COUNTING = True
    variants, pools = case_variants(case)
    chosen = next(v for v in variants if v.name == variant)
    try:
        if chosen.setup is not None:
            chosen.setup()
        chosen.run(max(ops // 10, 1))
        chosen.run(ops)
        if chosen.teardown is not None:
            chosen.teardown()
    finally:
        for pool in pools:
            pool.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=5_000)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated")
    parser.add_argument("--instructions", action="store_true", help="callgrind counts, no time")
    parser.add_argument("--count", help="internal: run one variant of --case, untimed")
    parser.add_argument("--case", default=CASES[0])
    args = parser.parse_args()
    trace.set_tracer_provider(TracerProvider(sampler=ParentBased(TraceIdRatioBased(RATIO))))
    cases = [c for c in args.cases.split(",") if c]
    if args.count:
        count_one(args.case, args.count, args.ops)
        return
    if args.instructions:
        names = {c: [v.name for v in case_variants(c)[0]] for c in cases}
        for c in cases:
            for pool in case_variants(c)[1]:
                pool.shutdown()
        count_table("bench.bench_hops", names, args.ops, baseline="plain")
        return
    rows = []
    for case in cases:
        variants, pools = case_variants(case)
        try:
            rows += rows_of(case, interleave(variants, args.ops, rounds=args.rounds))
        finally:
            for pool in pools:
                pool.shutdown()
    report("hops", rows, baseline="plain")


if __name__ == "__main__":
    main()
