"""The Celery side: a task that refuses a payment with a BUSINESS error.

Run the worker from this directory: ``celery -A tasks worker``. ``worker_init`` runs in the
worker's main process before it forks its pool, so each prefork child writes its own spans file
(``spans/shop-worker-<pid>.otlp.jsonl``) with no code of ours in the child.
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery
from celery.signals import worker_init

import tracectx
from tracectx import ErrorKind, new_error

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
SPANS_DIR = os.environ.get("SPANS_DIR", "spans")

app = Celery("shop", broker=REDIS_URL, backend=REDIS_URL)
app.conf.update(broker_connection_retry_on_startup=True, worker_hijack_root_logger=False)


@worker_init.connect
def trace_the_worker(**_: Any) -> None:
    tracectx.setup("shop-worker", spans_file=f"{SPANS_DIR}/shop-worker.otlp.jsonl")


@app.task(name="shop.charge")
def charge(account_id: str, amount: int) -> str:
    if amount > 100:
        raise new_error(
            ErrorKind.BUSINESS, "insufficient balance", code="E_FUNDS", account_id=account_id
        )
    return "charged"
