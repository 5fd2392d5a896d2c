"""Work functions for process-pool tests (importable by spawned children)."""

from __future__ import annotations

from pathlib import Path

import structlog
from opentelemetry import trace

from tracectx import ErrorKind, get_bound, new_error


def whoami() -> dict[str, object]:
    ctx = trace.get_current_span().get_span_context()
    return {
        "trace_id": format(ctx.trace_id, "032x") if ctx.is_valid else None,
        "parent_span_id": format(ctx.span_id, "016x") if ctx.is_valid else None,
        "bound": get_bound(),
        "log_ctx": structlog.contextvars.get_contextvars(),
    }


def fail(id_file: str) -> None:
    err = new_error(ErrorKind.BUSINESS, "rejected in child", code="E_CHILD", step="child")
    Path(id_file).write_text(err.error_id)
    raise err


class Unpicklable(Exception):
    def __init__(self) -> None:
        super().__init__("cannot pickle me")
        self.lock = __import__("threading").Lock()


def fail_unpicklable(id_file: str) -> None:
    from tracectx import error_id

    exc = Unpicklable()
    Path(id_file).write_text(error_id(exc))
    raise exc


_seen_by_initializer: dict[str, object] = {}


def remember_context() -> None:
    """A pool initializer: note what context the worker process started in."""
    _seen_by_initializer.update(whoami())


def seen_by_initializer() -> dict[str, object]:
    return dict(_seen_by_initializer)


def bind_then_fail(unpicklable: bool) -> None:
    """Bind metadata in the child (a plain call), then fail."""
    from tracectx import bind

    bind(order_id="o-7")
    raise Unpicklable() if unpicklable else ValueError("card declined")


def die() -> None:
    """The worker dies under the pool (like an OOM kill): the pool breaks."""
    import os

    os._exit(1)


def traced_work(i: int) -> int:
    from tracectx import traced

    with traced("work"):
        return i * 2


def fail_plain(i: int) -> None:
    raise ValueError(f"failure {i}")


def _batch_to_file(path: str) -> None:
    """A real SDK provider whose BatchSpanProcessor holds spans for a minute, exporting to a
    file of OTLP JSON lines."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from tracectx.file_exporter import OTLPJsonFileExporter

    provider = TracerProvider()
    exporter = OTLPJsonFileExporter(path)
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=60_000))
    trace.set_tracer_provider(provider)


def fork_pool_app(path: str) -> None:
    """Script: fork workers trace 10 pieces of work and fail 5 times, then the pool shuts down."""
    import multiprocessing

    from tracectx import traced
    from tracectx.executors import ContextProcessPoolExecutor

    _batch_to_file(path)
    with traced("request"):
        mp_context = multiprocessing.get_context("fork")
        with ContextProcessPoolExecutor(2, mp_context=mp_context) as pool:
            assert list(pool.map(traced_work, range(10))) == [i * 2 for i in range(10)]
            for i in range(5):
                try:
                    pool.submit(fail_plain, i).result()
                except ValueError:
                    pass
    trace.get_tracer_provider().shutdown()  # type: ignore[attr-defined]


def sigterm_app(path: str, mode: str) -> None:
    """Script: 50 spans wait in the batch queue until SIGTERM arrives. `mode` words: ``flush``
    (flush_on_sigterm), ``twice`` (call it again), ``undo`` (remove it), ``chain`` (the app
    installed its own SIGTERM handler first: it notes the signal and exits hard with 3)."""
    import os
    import signal
    import sys
    import time

    from tracectx.shutdown import flush_on_sigterm, remove_flush_on_sigterm

    _batch_to_file(path)
    words = mode.split(",")
    if "chain" in words:

        def app_handler(signum: int, frame: object) -> None:
            with open(path + ".app", "a") as f:
                f.write(f"stopped by {signum}\n")
            os._exit(3)

        signal.signal(signal.SIGTERM, app_handler)
    if "flush" in words:
        flush_on_sigterm()
    if "twice" in words:
        flush_on_sigterm()
    if "undo" in words:
        remove_flush_on_sigterm()
    tracer = trace.get_tracer("app")
    for i in range(50):
        tracer.start_span(f"pending {i}").end()
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    time.sleep(60)
