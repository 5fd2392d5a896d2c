"""Run the demo: start the embedded parts, send one request, then show where errors went."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from pathlib import Path

import httpx

import tracectx
from tracectx import set_fatal_hook
from tracectx.safetext import escape_control
from tracectx_demo.options import DemoOptions
from tracectx_demo.orders_stream import OrdersStream, kafka_broker
from tracectx_demo.tasks import make_app, running_worker
from tracectx_demo.telemetry import Telemetry

__all__ = ["run_demo"]


def _step(message: str) -> None:
    """Print one step; error codes and ids in it come from other processes, so escaped."""
    # One write per line: alerts print from delivery threads at the same time.
    sys.stdout.write(f"• {escape_control(message)}\n")
    sys.stdout.flush()


async def _request(app: object) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://shop") as client:
        return await client.post("/checkout", headers={"x-request-id": "req-42"})


def run_demo(options: DemoOptions) -> int:
    """Run the whole demo; returns a process exit code."""
    from tracectx_demo.report import report

    out = Path(options.out)
    out.mkdir(parents=True, exist_ok=True)
    otlp_path = out / "spans.otlp.jsonl"
    otlp_path.unlink(missing_ok=True)
    logging.basicConfig(level=logging.CRITICAL)
    # The shop, its Celery worker and its Kafka consumers are one application: the ids it binds
    # travel between them (and are trusted on arrival); everything else it binds stays put.
    tracectx.configure(
        propagate_keys=["account_id", "order_id", "request_id"],
        baggage_allowlist=["account_id", "order_id", "request_id"],
    )
    telemetry = Telemetry(otlp_path, options.otlp_endpoint, options.alertmanager, options.jaeger_ui)
    set_fatal_hook()  # the FATAL error is staged: no CRITICAL stack trace in the output
    from tracectx_demo.shop import make_shop

    _step(
        "starting: Kafka broker "
        + (options.bootstrap_servers or "(embedded tansu)")
        + ", Celery worker "
        + (options.broker_url or "(in-process, memory broker)")
    )
    with (
        kafka_broker(options.bootstrap_servers) as bootstrap,
        running_worker(celery := make_app(options.broker_url)),
    ):
        stream = OrdersStream(bootstrap)
        app = make_shop(celery, stream, _step)
        _step("POST /checkout  (x-request-id: req-42)")
        response = asyncio.run(_request(app))
        _step(f"answer: {response.status_code} {response.headers['content-type']}")
        print("  " + json.dumps(response.json()), flush=True)
        _step("kafka: shipping consumer fails (BUSINESS), dead-letters; DLQ consumer picks up")
        if not stream.wait():
            _step("kafka leg did not finish in time (see the graph for what arrived)")
        app.state.pool.shutdown()
    telemetry.close()
    return report(telemetry, out, options)
