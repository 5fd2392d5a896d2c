"""Kind-aware circuit breaker: BUSINESS is neutral, TRANSIENT/FATAL trip it, fallback, probes."""

from __future__ import annotations

import asyncio
import threading

import pytest

from tests.helpers import by_name
from tracectx import (
    BreakerState,
    CircuitBreaker,
    CircuitOpenError,
    ErrorKind,
    classify,
    new_error,
    register_kind,
    traced,
)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def failing(kind: ErrorKind):
    def fn() -> None:
        raise new_error(kind, "dependency says no")

    return fn


def ok() -> str:
    return "ok"


def hit(breaker: CircuitBreaker, fn, times: int = 1) -> None:
    for _ in range(times):
        with pytest.raises(Exception):
            breaker.call(fn)


def test_business_errors_never_open_it_nor_reset_failures():
    breaker = CircuitBreaker("payments", fail_max=3)
    hit(breaker, failing(ErrorKind.BUSINESS), 50)
    assert breaker.state is BreakerState.CLOSED
    hit(breaker, failing(ErrorKind.TRANSIENT), 2)
    hit(breaker, failing(ErrorKind.BUSINESS), 5)  # neutral: not a success either
    assert breaker.failures == 2
    hit(breaker, failing(ErrorKind.TRANSIENT))
    assert breaker.state is BreakerState.OPEN


@pytest.mark.parametrize("kind", [ErrorKind.TRANSIENT, ErrorKind.FATAL])
def test_failure_kinds_open_it_and_calls_are_rejected(kind):
    calls = []
    breaker = CircuitBreaker("db", fail_max=2)
    hit(breaker, failing(kind), 2)
    with pytest.raises(CircuitOpenError) as info:
        breaker.call(lambda: calls.append(1))
    assert calls == [] and classify(info.value) is ErrorKind.TRANSIENT
    assert info.value.metadata["breaker"] == "db"


def test_success_resets_the_consecutive_count():
    breaker = CircuitBreaker("db", fail_max=2)
    hit(breaker, failing(ErrorKind.TRANSIENT))
    assert breaker.call(ok) == "ok"
    hit(breaker, failing(ErrorKind.TRANSIENT))
    assert breaker.state is BreakerState.CLOSED


def test_custom_kind_counts_by_its_base():
    timeout = register_kind("NETWORK_TIMEOUT", 5001, base=ErrorKind.TRANSIENT)
    breaker = CircuitBreaker("api", fail_max=1)
    hit(breaker, failing(timeout))
    assert breaker.state is BreakerState.OPEN


def test_fallback_answers_rejected_calls():
    breaker = CircuitBreaker(
        "quotes", fail_max=1, fallback=lambda exc, symbol: f"cached {symbol} ({exc.code})"
    )
    hit(breaker, lambda: (_ for _ in ()).throw(ConnectionError("down")))
    assert breaker.call(lambda symbol: "live", "ACME") == "cached ACME (circuit_open)"


def test_half_open_probe_closes_or_reopens():
    clock = Clock()
    breaker = CircuitBreaker("db", fail_max=1, reset_timeout=10, clock=clock)
    hit(breaker, failing(ErrorKind.TRANSIENT))
    clock.now = 9.9
    assert breaker.state is BreakerState.OPEN
    clock.now = 10
    assert breaker.state is BreakerState.HALF_OPEN
    hit(breaker, failing(ErrorKind.TRANSIENT))  # the probe fails
    assert breaker.state is BreakerState.OPEN
    clock.now = 20
    hit(breaker, failing(ErrorKind.BUSINESS))  # neutral probe: still half-open
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.call(ok) == "ok"
    assert breaker.state is BreakerState.CLOSED


def test_half_open_lets_only_so_many_probes_at_once():
    clock = Clock()
    breaker = CircuitBreaker("db", fail_max=1, reset_timeout=1, clock=clock)
    hit(breaker, failing(ErrorKind.TRANSIENT))
    clock.now = 1
    results = []

    def probe() -> str:
        with pytest.raises(CircuitOpenError):
            breaker.call(ok)  # a second concurrent probe is rejected
        results.append("probe ran")
        return "ok"

    assert breaker.call(probe) == "ok" and results == ["probe ran"]


async def test_async_calls_and_async_fallback():
    async def fallback(exc, fail):
        return "fallback"

    breaker = CircuitBreaker("async", fail_max=1, fallback=fallback)

    @breaker
    async def fetch(fail: bool) -> str:
        if fail:
            raise TimeoutError("slow")
        return "fresh"

    assert await fetch(False) == "fresh"
    with pytest.raises(TimeoutError):
        await fetch(True)
    assert await fetch(False) == "fallback"


def test_state_changes_recorded_on_the_current_span(spans):
    breaker = CircuitBreaker("db", fail_max=1)
    with traced("request"):
        hit(breaker, failing(ErrorKind.FATAL))
    (event,) = by_name(spans, "request").events
    assert event.name == "tracectx.breaker.state_change"
    assert dict(event.attributes) == {"breaker": "db", "from": "closed", "to": "open"}


def half_open(breaker: CircuitBreaker, clock: Clock) -> None:
    hit(breaker, failing(ErrorKind.TRANSIENT))
    clock.now += breaker.reset_timeout
    assert breaker.state is BreakerState.HALF_OPEN


async def test_a_probe_cancelled_by_wait_for_frees_its_slot_and_is_not_a_failure():
    """CancelledError is not an Exception: the slot used to stay taken, every call refused."""
    clock = Clock()
    breaker = CircuitBreaker("db", fail_max=1, reset_timeout=10, clock=clock)
    half_open(breaker, clock)

    async def slow() -> str:
        await asyncio.sleep(10)
        return "late"

    async def fast() -> str:
        return "ok"

    with pytest.raises(TimeoutError):
        await asyncio.wait_for(breaker.call_async(slow), 0.01)
    assert breaker.state is BreakerState.HALF_OPEN  # the dependency did not fail
    assert await breaker.call_async(fast) == "ok"  # the next probe is let through
    assert breaker.state is BreakerState.CLOSED


def test_an_interrupted_sync_probe_is_neutral_and_frees_its_slot():
    clock = Clock()
    breaker = CircuitBreaker("db", fail_max=1, reset_timeout=10, clock=clock)
    half_open(breaker, clock)

    def interrupted() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        breaker.call(interrupted)
    assert breaker.state is BreakerState.HALF_OPEN  # not counted as a successful probe
    assert breaker.call(ok) == "ok" and breaker.state is BreakerState.CLOSED


def test_a_probe_that_never_returns_does_not_hold_half_open_forever():
    clock = Clock()
    breaker = CircuitBreaker("db", fail_max=1, reset_timeout=10, clock=clock)
    half_open(breaker, clock)
    entered, release = threading.Event(), threading.Event()

    def hung() -> None:
        entered.set()
        release.wait(10)

    probe = threading.Thread(target=lambda: breaker.call(hung))
    probe.start()
    try:
        assert entered.wait(5)
        with pytest.raises(CircuitOpenError):
            breaker.call(ok)  # the probe holds its slot for a while...
        clock.now += 10
        assert breaker.call(ok) == "ok"  # ...but not for ever
        assert breaker.state is BreakerState.CLOSED
    finally:
        release.set()
        probe.join()
    assert breaker.state is BreakerState.CLOSED  # the late probe finishing keeps it closed
