"""The HTTP side: a Starlette app under uvicorn that charges through the Celery task.

Run from this directory: ``uvicorn app:app``. A refused payment comes back as the worker raised
it (kind, code, error id) and leaves as a 400 ``application/problem+json`` answer.
"""

from __future__ import annotations

import os

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from tasks import charge

import tracectx

SPANS_DIR = os.environ.get("SPANS_DIR", "spans")
tracectx.setup("shop-api", spans_file=f"{SPANS_DIR}/shop-api.otlp.jsonl")


async def pay(request: Request) -> JSONResponse:
    order = await request.json()
    result = charge.delay(order["account_id"], order["amount"])
    status = await run_in_threadpool(result.get, timeout=30)  # raises the worker's error
    return JSONResponse({"status": status})


# Made after setup(): the asgi integration adds its middleware to Starlette apps made from then on.
app = Starlette(routes=[Route("/pay", pay, methods=["POST"])])
