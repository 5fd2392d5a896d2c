"""Sampled-out work: a span nobody records gets no tracectx attribute building, envelope
encoding or stack formatting, while its error still carries its id and bound metadata."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased, TraceIdRatioBased
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from tracectx import aio, bound, recording, traced, tracing
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
        current = trace.get_current_span()
        assert not current.is_recording()
        assert current.get_span_context().span_id == 0xDEF  # no span made: the parent's is current
        raise ValueError("task failed")

    async def main() -> BaseException:
        with bound(order_id="o-2"):
            task = aio.create_task(work(), span="work")
            with pytest.raises(ValueError) as info, traced("awaiting"):
                await task  # retrieved: recorded (here: its id and metadata) by the awaiter
        return info.value

    exc = asyncio.run(main())
    assert calls == {}
    assert spans.get_finished_spans() == ()
    assert error_id(exc)
    assert dict(exc.metadata) == {"order_id": "o-2"}  # type: ignore[attr-defined]


def _parent(sampled: bool, remote: bool = False) -> SpanContext:
    return SpanContext(0xABC, 0xDEF, is_remote=remote, trace_flags=TraceFlags(int(sampled)))


def test_sampled_out_only_when_the_sampler_surely_drops() -> None:
    """True only for an unsampled parent under a ParentBased sampler dropping its children."""
    production = TracerProvider(sampler=ParentBased(TraceIdRatioBased(0.01))).get_tracer("t")
    assert tracing.sampled_out(production, _parent(False))
    assert tracing.sampled_out(production, _parent(False, remote=True))
    assert not tracing.sampled_out(production, _parent(True))
    assert not tracing.sampled_out(
        production, SpanContext(0, 0, is_remote=False)
    )  # no parent: root
    keeps = ParentBased(ALWAYS_ON, local_parent_not_sampled=ALWAYS_ON)
    assert not tracing.sampled_out(TracerProvider(sampler=keeps).get_tracer("t"), _parent(False))
    assert tracing.sampled_out(TracerProvider(sampler=keeps).get_tracer("t"), _parent(False, True))
    assert not tracing.sampled_out(
        TracerProvider(sampler=ALWAYS_ON).get_tracer("t"), _parent(False)
    )
    # whatever the predicate says, the SDK agrees: a child of that parent is not recorded
    ctx = trace.set_span_in_context(NonRecordingSpan(_parent(False)))
    assert not production.start_span("child", ctx).is_recording()


def test_traced_block_sampled_out_makes_no_span(
    spans: Any, sampled_out: None, calls: dict[str, int]
) -> None:
    with pytest.raises(KeyError) as info, bound(user="u1"), traced("lookup") as span:
        assert span.get_span_context().span_id == 0xDEF  # the parent's: no span made
        raise KeyError("k")
    assert calls == {} and spans.get_finished_spans() == ()
    assert error_id(info.value)
    assert dict(info.value.metadata) == {"user": "u1"}  # type: ignore[attr-defined]


def test_child_tracer_answers_for_the_tracer_asked(sampled_out: None) -> None:
    """The kept answer for a parent is per tracer: one that records is never told to skip."""
    drops = TracerProvider(sampler=ParentBased(TraceIdRatioBased(0.01))).get_tracer("t")
    keeps = TracerProvider(sampler=ALWAYS_ON).get_tracer("t")
    assert tracing.child_tracer(drops) is None
    assert tracing.child_tracer(keeps) is keeps
    assert tracing.child_tracer(drops) is None
    with trace.use_span(NonRecordingSpan(_parent(True))):
        assert tracing.child_tracer(drops) is drops  # a sampled parent: recorded
