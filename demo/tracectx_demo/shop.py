"""The demo's service: ``POST /checkout`` on a Starlette app behind `TracectxMiddleware`.

The handler walks every hop tracectx carries, with a fault of each kind on the way: a thread
pool (TRANSIENT inventory timeout, retried), asyncio tasks (an UNKNOWN error in a
fire-and-forget task), Celery (a TRANSIENT gateway error retried by the worker; a BUSINESS
coupon rejection that comes back with its identity and is absorbed), Kafka (the order event;
its consumer fails and dead-letters it), and finally a FATAL error that escapes as a 500
problem+json.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from celery import Celery
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tracectx import ErrorKind, TracedError, bound, mark_handled, new_error, retry_transient, traced
from tracectx.aio import create_task, gather, instrument_loop, run_in_executor
from tracectx.executors import ContextThreadPoolExecutor
from tracectx_asgi import TracectxMiddleware
from tracectx_demo.orders_stream import OrdersStream

__all__ = ["make_shop"]

Step = Callable[[str], None]


def _reserve_inventory(calls: list[int]) -> str:
    @retry_transient(attempts=3, initial=0.01, maximum=0.05)
    @traced("inventory.reserve")
    def reserve() -> str:
        calls.append(1)
        if len(calls) < 2:
            raise TimeoutError("inventory service timed out")
        return "reserved"

    return reserve()


async def _score(item: int) -> int:
    with traced("fraud.score"):
        await asyncio.sleep(0.001)
        return item * 7


async def _audit() -> None:
    await asyncio.sleep(0.001)
    raise KeyError("audit template missing")  # UNKNOWN, in a task nobody awaits


def make_shop(celery: Celery, stream: OrdersStream, step: Step) -> Starlette:
    pool = ContextThreadPoolExecutor(2, thread_name_prefix="shop")

    async def checkout(request: Request) -> JSONResponse:
        instrument_loop()
        order_id = "ord_1001"
        with bound(account_id="acc_123", order_id=order_id):
            step("thread pool: reserve inventory (TRANSIENT timeout, retried, succeeds)")
            await run_in_executor(pool, _reserve_inventory, [])

            step("asyncio: fraud scoring in tasks; an UNKNOWN error in a fire-and-forget task")
            with traced("risk.assess"):
                await gather(*(_score(i) for i in range(3)), span="score task")
                create_task(_audit(), name="audit (fire-and-forget)")
                await asyncio.sleep(0.01)

            step("celery: capture payment (TRANSIENT gateway error, retried by the worker)")
            capture = celery.signature("payments.capture", args=(order_id, 42)).delay()
            await run_in_executor(pool, lambda: capture.get(timeout=15, interval=0.01))

            step("celery: redeem coupon (BUSINESS rejection comes back, absorbed here)")
            with traced("pricing.apply_coupon"):
                try:
                    redeem: Any = celery.signature("coupons.redeem", args=("SPRING",)).delay()
                    await run_in_executor(pool, lambda: redeem.get(timeout=15, interval=0.01))
                except TracedError as err:
                    mark_handled(err)
                    step(f"  coupon rejected: {err.kind.name} {err.code}, id {err.error_id}")

            step("kafka: publish order.placed (its consumer will fail and dead-letter it)")
            await run_in_executor(pool, stream.publish, order_id)

            step("receipt: FATAL error escapes the request")
            with traced("receipt.render"):
                raise new_error(
                    ErrorKind.FATAL, "receipt template store unreadable", code="E_TEMPLATES"
                )

    app = Starlette(routes=[Route("/checkout", checkout, methods=["POST"])])
    app.add_middleware(TracectxMiddleware)
    app.state.pool = pool
    return app
