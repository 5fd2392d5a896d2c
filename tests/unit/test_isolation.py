"""Many concurrent traces, thousands of hops across threads and tasks: zero cross-trace leaks."""

from __future__ import annotations

import asyncio
import random

from opentelemetry import trace

from tracectx import bound, get_bound, traced
from tracectx.aio import create_task, run_in_executor
from tracectx.executors import ContextThreadPoolExecutor


def _ids() -> tuple[int, str | None]:
    return trace.get_current_span().get_span_context().trace_id, get_bound().get("request")


def test_no_cross_trace_leaks_under_load(spans):
    pool = ContextThreadPoolExecutor(8)
    leaks: list[str] = []

    async def hop(depth: int, expected: tuple[int, str]) -> int:
        if _ids() != expected:
            leaks.append(f"task {_ids()} != {expected}")
        if depth == 0:
            return 1
        if random.random() < 0.5:
            got = await run_in_executor(pool, _ids)
            if got != expected:
                leaks.append(f"thread {got} != {expected}")
        await asyncio.sleep(0)
        children = [create_task(hop(depth - 1, expected)) for _ in range(2)]
        return 1 + sum(await asyncio.gather(*children))

    async def request(i: int) -> int:
        with traced(f"request-{i}"), bound(request=f"r{i}"):
            expected = _ids()
            return await hop(5, expected)

    async def main() -> int:
        return sum(await asyncio.gather(*(request(i) for i in range(60))))

    hops = asyncio.run(main())
    pool.shutdown()
    assert hops >= 3000
    assert leaks == []
