"""A span processor that writes the thread and asyncio task each span starts in.

``thread.id`` and ``thread.name`` (OTel's general attributes) and ``tracectx.task.name``: what
``tracectx graph --check-propagation`` needs to tell a root started on a pool thread that lost
its context (a raw ``ThreadPoolExecutor``, ``loop.run_in_executor`` without the hooks) from
work that legitimately starts a trace. Add it to the tracer provider::

    provider.add_span_processor(ThreadAttributes())
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from opentelemetry.sdk.trace import Span, SpanProcessor

from tracectx import semconv as sc

__all__ = ["ThreadAttributes"]


class ThreadAttributes(SpanProcessor):
    """Sets ``thread.id``, ``thread.name`` and, inside an asyncio task, ``tracectx.task.name``
    on every span as it starts (the span's own attributes win: nothing set is overwritten)."""

    def on_start(self, span: Span, parent_context: Any = None) -> None:
        if not span.is_recording():
            return
        attributes = span.attributes or {}
        thread = threading.current_thread()
        if "thread.id" not in attributes:
            span.set_attribute("thread.id", threading.get_ident())
        if "thread.name" not in attributes:
            span.set_attribute("thread.name", thread.name)
        if sc.ATTR_TASK_NAME in attributes:
            return
        try:
            task = asyncio.current_task()
        except RuntimeError:  # no running loop in this thread
            return
        if task is not None:
            span.set_attribute(sc.ATTR_TASK_NAME, task.get_name())
