"""`ThreadAttributes` on the real SDK, and what the propagation check reads from it: a raw
``ThreadPoolExecutor`` and ``loop.run_in_executor`` without the hooks lose the context (found),
tracectx's executors and hooks keep it (nothing found)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tracectx import semconv as sc
from tracectx.executors import ContextThreadPoolExecutor
from tracectx.thread_attributes import ThreadAttributes
from tracectx.viz.propagation_check import check_propagation
from tracectx.viz.sources.memory import from_readable_spans


def _provider():
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "orders"}))
    provider.add_span_processor(ThreadAttributes())
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider.get_tracer("t"), exporter


def test_thread_and_task_are_written_and_never_overwritten():
    tracer, exporter = _provider()
    with tracer.start_as_current_span("main"):
        pass
    with tracer.start_as_current_span("own", attributes={"thread.name": "mine"}):
        pass

    async def in_task() -> None:
        with tracer.start_as_current_span("async"):
            pass

    asyncio.run(in_task())
    spans = {s.name: s.attributes for s in exporter.get_finished_spans()}
    assert spans["main"]["thread.name"] == threading.current_thread().name
    assert spans["main"]["thread.id"] == threading.get_ident()
    assert sc.ATTR_TASK_NAME not in spans["main"]
    assert spans["own"]["thread.name"] == "mine"
    assert spans["async"][sc.ATTR_TASK_NAME].startswith("Task-")


def _work(tracer, name):
    def run() -> None:
        with tracer.start_as_current_span(name):
            pass

    return run


def test_a_raw_pool_loses_the_context_and_tracectx_s_pool_keeps_it():
    tracer, exporter = _provider()
    with tracer.start_as_current_span("handle") as handle:
        with concurrent.futures.ThreadPoolExecutor(1) as raw:
            raw.submit(_work(tracer, "lost")).result()
        with ContextThreadPoolExecutor(1) as kept:
            kept.submit(_work(tracer, "kept")).result()
    report = check_propagation(from_readable_spans(exporter.get_finished_spans()))
    [finding] = report.findings
    assert (finding.kind, finding.hop) == ("in-process-loss", "thread")
    assert finding.caller.operation == "handle" and finding.callee.operation == "lost"
    assert finding.caller.span_id == format(handle.get_span_context().span_id, "016x")
    [row] = report.health
    assert (row.hop, row.seen, row.connected, row.broken) == ("thread", 2, 1, 1)


def test_run_in_executor_without_the_hooks_is_a_lost_task_hop():
    tracer, exporter = _provider()

    async def handle() -> None:
        with tracer.start_as_current_span("handle"):
            await asyncio.get_running_loop().run_in_executor(None, _work(tracer, "sign"))

    asyncio.run(handle())
    [finding] = check_propagation(from_readable_spans(exporter.get_finished_spans())).findings
    assert (finding.kind, finding.hop) == ("in-process-loss", "task")
    assert (finding.caller.operation, finding.callee.operation) == ("handle", "sign")
    assert any("pool thread asyncio_" in e for e in finding.evidence)
