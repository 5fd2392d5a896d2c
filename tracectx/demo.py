"""``tracectx demo``: a small real pipeline with faults of every kind, then its error graph.

HTTP-like entry span → thread pool → asyncio tasks, with a TRANSIENT error retried then
succeeding, a BUSINESS rejection absorbed upstream, an UNKNOWN error in a fire-and-forget task
and a FATAL one that escapes. Prints the propagation graph and writes the HTML page and the
OTLP JSON of all spans. The Celery and Kafka legs join as their integrations land.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tracectx.aio import create_task, gather, instrument_loop
from tracectx.context import bind
from tracectx.errors import new_error
from tracectx.executors import ContextThreadPoolExecutor
from tracectx.file_exporter import OTLPJsonFileExporter
from tracectx.kinds import ErrorKind, set_fatal_hook
from tracectx.recording import handled, traced
from tracectx.retry import retry_transient

__all__ = ["run_demo"]


def _step(message: str) -> None:
    print(f"• {message}", flush=True)


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


async def _async_leg() -> None:
    instrument_loop()
    with traced("risk.assess"):
        await gather(*(_score(i) for i in range(3)), span="score task")
        create_task(_audit(), name="audit (fire-and-forget)")
        await asyncio.sleep(0.01)


def _checkout(pool: ContextThreadPoolExecutor) -> None:
    with traced("POST /checkout"):
        bind(account_id="acc_123", currency="CNY")
        _step("thread pool: reserving inventory (TRANSIENT timeout, retried)")
        pool.submit(_reserve_inventory, []).result()
        _step("asyncio: scoring in tasks, an UNKNOWN error in a fire-and-forget task")
        pool.submit(asyncio.run, _async_leg()).result()
        _step("payment: BUSINESS rejection absorbed by the payment span")
        with traced("payment.authorize"):
            try:
                with traced("ledger.debit"):
                    raise new_error(ErrorKind.BUSINESS, "insufficient balance", code="E_FUNDS")
            except Exception as exc:
                handled(exc)
        _step("config: FATAL error escapes the request")
        with traced("config.load"):
            raise new_error(ErrorKind.FATAL, "config unreadable", code="E_CONF")


def run_demo(out_dir: str = "tracectx-demo") -> int:
    """Run the demo and show its error graph; returns a process exit code."""
    from tracectx.viz import analyse
    from tracectx.viz.renderers import render_html, render_mermaid, render_terminal
    from tracectx.viz.sources.memory import from_readable_spans

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    otlp_path = out / "spans.otlp.jsonl"
    otlp_path.unlink(missing_ok=True)
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "tracectx-demo"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    provider.add_span_processor(SimpleSpanProcessor(OTLPJsonFileExporter(otlp_path)))
    trace.set_tracer_provider(provider)
    set_fatal_hook()  # the FATAL error is staged: no CRITICAL stack trace in the demo output

    with ContextThreadPoolExecutor(2) as pool:
        try:
            _checkout(pool)
        except Exception as exc:
            _step(f"request failed as designed: {exc!r}")
    provider.force_flush()

    analyses = analyse(from_readable_spans(memory.get_finished_spans()))
    print()
    render_terminal(analyses)
    html_path = out / "errors.html"
    html_path.write_text(render_html(analyses), encoding="utf-8")
    (out / "errors.mmd").write_text(render_mermaid(analyses), encoding="utf-8")
    print(f"\nopen {html_path}  (error graph, offline page)")
    print(f"spans: {otlp_path}  (OTLP JSON; `tracectx graph {otlp_path}` rebuilds the graph)")
    print(f"mermaid: {out / 'errors.mmd'}")
    return 0
