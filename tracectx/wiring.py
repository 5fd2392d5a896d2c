"""What `tracectx.setup` wires besides spans: log correlation and the unobserved-failure hooks.

Each ``wire_*`` returns an undo function (what `tracectx.teardown` calls), and each undo leaves
alone whatever someone else put on top since:

- stdlib logging: ``Logger.makeRecord`` wrapped, so every record carries ``trace_id``/
  ``span_id``/``error_*`` (`tracectx.logging.TracectxLogFilter`'s fields) whatever handler
  formats it — a filter on a handler would miss the handlers added later, and a record factory
  runs before ``extra=`` is applied, which then refuses to overwrite those fields.
- structlog, when the application configured it: tracectx's processors inserted just before the
  renderer (the last processor). Loggers already cached keep their chain: call `setup` after
  ``structlog.configure``.
- asyncio: every event loop made from now on (``BaseEventLoop.__init__``) and the running one
  get `tracectx.aio.instrument_loop`, so a task failure nobody retrieves is recorded and logged
  once with its trace id. Threads are the ``threading`` integration's (its excepthook).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any

__all__ = ["wire_asyncio", "wire_logging", "wire_structlog"]

Undo = Callable[[], None]


def wire_logging() -> Undo:
    """Add trace and error fields to every stdlib log record (level left as logged)."""
    from tracectx.logging import TracectxLogFilter
    from tracectx.patching import Patches

    fields = TracectxLogFilter(adjust_level=False)
    patches = Patches()

    def make_record(
        wrapped: Callable[..., logging.LogRecord], logger: Any, args: Any, kwargs: Any
    ) -> logging.LogRecord:
        record = wrapped(*args, **kwargs)
        if not hasattr(record, "trace_id"):  # the caller's own ``extra=`` wins
            fields.filter(record)
        return record

    patches.wrap(logging.Logger, "makeRecord", make_record)
    return patches.undo


def wire_structlog() -> Undo | None:
    """Insert tracectx's processors before structlog's renderer, if the application configured
    structlog (else None: nothing to wire, and structlog is not even imported)."""
    structlog = sys.modules.get("structlog")
    if structlog is None or not structlog.is_configured():
        return None
    from tracectx import logging as tl

    ours = [tl.add_trace_ids, tl.add_bound_metadata, tl.add_error_fields]
    processors = list(structlog.get_config()["processors"])
    added = [p for p in ours if p not in processors]
    if not added:
        return None
    at = max(len(processors) - 1, 0)  # before the renderer
    structlog.configure(processors=[*processors[:at], *added, *processors[at:]])

    def undo() -> None:
        current = structlog.get_config()["processors"]
        structlog.configure(processors=[p for p in current if p not in added])

    return undo


def wire_asyncio() -> Undo:
    """Record and log unretrieved task failures on every event loop made from now on, and on
    the running one."""
    import asyncio

    from tracectx.aio import instrument_loop, uninstrument_loop
    from tracectx.patching import Patches

    patches = Patches()

    def init(wrapped: Callable[..., None], loop: Any, args: Any, kwargs: Any) -> None:
        wrapped(*args, **kwargs)
        instrument_loop(loop)

    patches.wrap(asyncio.BaseEventLoop, "__init__", init)
    try:
        running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is not None:
        instrument_loop(running)

    def undo() -> None:
        patches.undo()
        if running is not None and not running.is_closed():
            uninstrument_loop(running)

    return undo
