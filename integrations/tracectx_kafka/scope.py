"""Making a record's context current and restoring the one from before it — per record, so cheap.

`enter` attaches a context and returns what `leave` needs to restore the context from before
it, dropping whatever was attached on top (a handler's plain ``bind()``), but only in the
context it was entered in: left from another thread or task (aiokafka's ``wait_for`` on
Python < 3.12), nothing is touched.

With OTel's default runtime context (a `contextvars.ContextVar`), entering is one ``set`` of
that variable and leaving one ``reset`` (which itself refuses a token of another context);
with any other runtime context, OTel's ``attach``/``detach`` and a marker variable of our own
do the same.
"""

from __future__ import annotations

import contextvars
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry.context import Context

from tracectx.context import runtime_context_var

__all__ = ["VAR", "enter", "leave"]


VAR = _VAR = (
    runtime_context_var()
)  # set: `enter` is ``VAR.set`` and `leave` ``VAR.reset`` (inlinable)
_entered: contextvars.ContextVar[object] = contextvars.ContextVar("tracectx_kafka_entered")


def enter(ctx: Context) -> Any:
    """Make `ctx` current; the result is for `leave`."""
    if _VAR is not None:
        return _VAR.set(ctx)
    return otel_context.attach(ctx), _entered.set(None)


def leave(entered: Any) -> None:
    """Restore the context from before `enter` (once; only in the context it was entered in)."""
    if _VAR is not None:
        try:
            _VAR.reset(entered)
        except (ValueError, RuntimeError):  # another context, or restored already
            pass
        return
    token, marker = entered
    try:
        _entered.reset(marker)
    except (ValueError, RuntimeError):
        return
    otel_context.detach(token)
