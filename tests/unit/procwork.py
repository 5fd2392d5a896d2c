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
