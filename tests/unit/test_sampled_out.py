"""Sampled-out work: a span nobody records gets no tracectx attribute building, envelope
encoding or stack formatting, while its error still carries its id and bound metadata."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from tracectx import aio, bound, recording, traced
from tracectx.errors import error_id


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Counts calls of tracectx's attribute builders and exception event (the real ones run)."""
    counted: dict[str, int] = {}

    def counting(name: str) -> None:
        real: Callable[..., Any] = getattr(recording, name)

        def spy(*args: Any, **kwargs: Any) -> Any:
            counted[name] = counted.get(name, 0) + 1
            return real(*args, **kwargs)

        monkeypatch.setattr(recording, name, spy)

    for name in ("error_attributes", "meta_attributes", "_exception_event"):
        counting(name)
    return counted


@pytest.fixture
def sampled_out() -> Iterator[None]:
    """A current parent that was not sampled: ParentBased drops every child span."""
    parent = NonRecordingSpan(SpanContext(0xABC, 0xDEF, is_remote=False, trace_flags=TraceFlags(0)))
    with trace.use_span(parent):
        yield


@traced
def failing() -> None:
    raise ValueError("no funds")


@traced
def adding(a: int, b: int) -> int:
    assert not trace.get_current_span().is_recording()
    return a + b


def test_traced_sampled_out_builds_nothing_and_error_keeps_id_and_metadata(
    spans: Any, sampled_out: None, calls: dict[str, int]
) -> None:
    assert adding(1, 2) == 3
    with bound(order_id="o-1"), pytest.raises(ValueError) as info:
        failing()
    assert calls == {}
    assert spans.get_finished_spans() == ()
    assert error_id(info.value)  # the id the logs and the caller's span will use
    assert dict(info.value.metadata) == {"order_id": "o-1"}  # type: ignore[attr-defined]


def test_traced_recorded_still_builds_attributes(spans: Any, calls: dict[str, int]) -> None:
    with bound(order_id="o-1"), pytest.raises(ValueError):
        failing()
    assert calls["error_attributes"] == 1 and calls["_exception_event"] == 1
    (span,) = spans.get_finished_spans()
    assert span.attributes["tracectx.error.meta.order_id"] == "o-1"


def test_task_span_sampled_out_builds_nothing(
    spans: Any, sampled_out: None, calls: dict[str, int]
) -> None:
    async def work() -> None:
        assert not trace.get_current_span().is_recording()
        raise ValueError("task failed")

    async def main() -> BaseException | None:
        with bound(order_id="o-2"):
            task = aio.create_task(work(), span="work")
        await asyncio.wait([task])
        return task.exception()

    exc = asyncio.run(main())
    assert isinstance(exc, ValueError)
    assert calls == {}
    assert spans.get_finished_spans() == ()
    assert error_id(exc)
    assert dict(exc.metadata) == {"order_id": "o-2"}  # type: ignore[attr-defined]
