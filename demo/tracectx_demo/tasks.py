"""The Celery leg: a payments app with an embedded worker thread (in-memory broker by default,
Redis with ``--broker-url``)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from celery import Celery
from celery.contrib.testing.worker import start_worker

import tracectx_celery
from tracectx import ErrorKind, new_error

__all__ = ["make_app", "running_worker"]


def make_app(broker_url: str | None) -> Celery:
    app = Celery(
        "shop",
        broker=broker_url or "memory://",
        backend=broker_url or "cache+memory://",
        set_as_current=False,
    )
    app.conf.update(
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
        broker_transport_options={"polling_interval": 0.01},  # memory transport: no 1 s naps
    )
    attempts: dict[str, int] = {}

    @app.task(  # type: ignore[untyped-decorator]
        name="payments.capture", bind=True, shared=False, retry_transient=True, max_retries=3
    )
    def capture(self: Any, order_id: str, amount: int) -> str:
        attempts[order_id] = attempts.get(order_id, 0) + 1
        if attempts[order_id] == 1:
            raise new_error(ErrorKind.TRANSIENT, "payment gateway returned 503", code="E_GATEWAY")
        return f"captured {amount} for {order_id}"

    @app.task(name="coupons.redeem", shared=False)  # type: ignore[untyped-decorator]
    def redeem(code: str) -> int:
        raise new_error(ErrorKind.BUSINESS, f"coupon {code} expired", code="E_COUPON", coupon=code)

    tracectx_celery.instrument(app, retry_backoff=0.05, retry_backoff_max=0.1)
    return app


@contextlib.contextmanager
def running_worker(app: Celery) -> Iterator[None]:
    """A solo worker on a thread of this process, for the duration of the block."""
    with start_worker(
        app, pool="solo", perform_ping_check=False, loglevel="CRITICAL", shutdown_timeout=5
    ):
        yield
