"""Circuit breakers that count only the kinds that mean a dependency is failing.

TRANSIENT and FATAL errors are failures; BUSINESS errors are *neutral* — the dependency
answered, the request was wrong — so they neither trip the breaker nor count as a success.
pybreaker cannot say that (its ``exclude`` turns an excluded error into a success, resetting
the failure count), so this is a small state machine of our own, in pybreaker's shape:
``fail_max`` consecutive failures open the circuit, after ``reset_timeout`` seconds it lets
``half_open_max`` probe call(s) through; ``success_threshold`` successful probes close it, a
failing probe opens it again. A probe that ends any other way (cancelled, interrupted, a
BUSINESS error) frees its slot and changes nothing; a probe still running after
``reset_timeout`` seconds no longer holds its slot, so half-open is never permanent. While
open, calls are rejected with `CircuitOpenError` (a TRANSIENT error: 503 at the HTTP edge) or
answered by the ``fallback``. State changes are logged and recorded as events on the current
span; ``tracectx.breaker.state`` is a gauge.
"""

from __future__ import annotations

import enum
import functools
import inspect
import logging
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, ParamSpec, TypeVar

from opentelemetry import metrics, trace

from tracectx import semconv
from tracectx.classify import classify
from tracectx.errors import TracedError
from tracectx.kinds import ErrorKind

__all__ = ["BreakerState", "CircuitBreaker", "CircuitOpenError"]

P = ParamSpec("P")
R = TypeVar("R")
EVENT_STATE_CHANGE = semconv.EVENT_BREAKER_STATE_CHANGE
_log = logging.getLogger("tracectx.breaker")
_breakers: weakref.WeakSet[CircuitBreaker] = weakref.WeakSet()
_gauge_lock = threading.Lock()
_gauge: Any = None


class BreakerState(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


_GAUGE_VALUE = {BreakerState.CLOSED: 0, BreakerState.HALF_OPEN: 1, BreakerState.OPEN: 2}


class CircuitOpenError(TracedError):
    """The breaker rejected the call without trying it."""

    def __init__(self, breaker: str, retry_in: float) -> None:
        super().__init__(
            f"circuit {breaker!r} is open",
            kind=ErrorKind.TRANSIENT,
            code="circuit_open",
            metadata={"breaker": breaker, "retry_in": round(retry_in, 3)},
        )


def _observe(_: Any) -> Iterable[metrics.Observation]:
    for breaker in list(_breakers):
        yield metrics.Observation(_GAUGE_VALUE[breaker.state], {"breaker": breaker.name})


def _register(breaker: CircuitBreaker) -> None:
    global _gauge
    _breakers.add(breaker)
    with _gauge_lock:
        if _gauge is None:
            _gauge = metrics.get_meter("tracectx").create_observable_gauge(
                semconv.ATTR_BREAKER_STATE,
                callbacks=[_observe],
                description="Circuit breaker state: 0 closed, 1 half-open, 2 open",
            )


class CircuitBreaker:
    """A kind-aware circuit breaker; a decorator (sync and async) or ``breaker.call(fn, ...)``.

    Args:
        name: shown in logs, span events, metrics and `CircuitOpenError`.
        fail_max: consecutive failures that open the circuit.
        reset_timeout: seconds open before a probe is let through; also how long a probe may
            hold its half-open slot.
        half_open_max: probes allowed at once while half-open.
        success_threshold: successful probes that close the circuit.
        failure_kinds: kinds counted as failures (custom kinds count by their base kind).
        fallback: ``fallback(exc, *args, **kwargs)`` answers rejected calls instead of raising.
    """

    def __init__(
        self,
        name: str,
        *,
        fail_max: int = 5,
        reset_timeout: float = 30.0,
        half_open_max: int = 1,
        success_threshold: int = 1,
        failure_kinds: Iterable[ErrorKind] = (ErrorKind.TRANSIENT, ErrorKind.FATAL),
        fallback: Callable[..., Any] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.fail_max, self.reset_timeout = fail_max, reset_timeout
        self.half_open_max, self.success_threshold = half_open_max, success_threshold
        self.failure_kinds = tuple(failure_kinds)
        self.fallback = fallback
        self.clock = clock
        self._lock = threading.Lock()
        self._state = BreakerState.CLOSED
        self._failures = self._successes = 0
        self._probes: dict[int, float] = {}  # probe ticket -> when it was let through
        self._tickets = 0
        self._opened_at = 0.0
        _register(self)

    # -- state ---------------------------------------------------------------------------
    @property
    def state(self) -> BreakerState:
        with self._lock:
            self._maybe_half_open()
            return self._state

    @property
    def failures(self) -> int:
        return self._failures

    def _maybe_half_open(self) -> None:
        if (
            self._state is BreakerState.OPEN
            and self.clock() - self._opened_at >= self.reset_timeout
        ):
            self._move(BreakerState.HALF_OPEN)

    def _move(self, to: BreakerState) -> None:
        before, self._state = self._state, to
        self._successes = 0
        self._probes.clear()
        if to is BreakerState.OPEN:
            self._opened_at = self.clock()
        if to is BreakerState.CLOSED:
            self._failures = 0
        level = logging.WARNING if to is BreakerState.OPEN else logging.INFO
        _log.log(level, "tracectx: breaker %s %s -> %s", self.name, before.value, to.value)
        span = trace.get_current_span()
        if span.is_recording():
            span.add_event(
                EVENT_STATE_CHANGE,
                {"breaker": self.name, "from": before.value, "to": to.value},
            )

    def is_failure(self, exc: BaseException) -> bool:
        """True if `exc` counts against the dependency (its kind is one of `failure_kinds`)."""
        kind = classify(exc)
        return any(kind.is_a(k) for k in self.failure_kinds)

    def _admit(self) -> int | None:
        """Let a call through or raise `CircuitOpenError`; a half-open probe gets a ticket."""
        with self._lock:
            self._maybe_half_open()
            if self._state is BreakerState.CLOSED:
                return None
            now = self.clock()
            if self._state is BreakerState.HALF_OPEN:
                # A probe that never came back (hung, its thread gone) stops holding its slot.
                for ticket, started in list(self._probes.items()):
                    if now - started >= self.reset_timeout:
                        del self._probes[ticket]
                if len(self._probes) < self.half_open_max:
                    self._tickets += 1
                    self._probes[self._tickets] = now
                    return self._tickets
                oldest = min(self._probes.values(), default=now)
                retry_in = max(oldest + self.reset_timeout - now, 0.0)
            else:
                retry_in = max(self.reset_timeout - (now - self._opened_at), 0.0)
        raise CircuitOpenError(self.name, retry_in)

    def _record(self, exc: BaseException | None, ticket: int | None) -> None:
        """Count a call's outcome; anything that is not an `Exception` (cancellation,
        KeyboardInterrupt) is neutral. The probe's slot is freed whatever happened."""
        with self._lock:
            if ticket is not None:
                self._probes.pop(ticket, None)
            half_open = self._state is BreakerState.HALF_OPEN
            if exc is None:
                if half_open:
                    self._successes += 1
                    if self._successes >= self.success_threshold:
                        self._move(BreakerState.CLOSED)
                else:
                    self._failures = 0
            elif isinstance(exc, Exception) and self.is_failure(exc):
                self._failures += 1
                if half_open or (
                    self._state is BreakerState.CLOSED and self._failures >= self.fail_max
                ):
                    self._move(BreakerState.OPEN)
            # any other outcome (BUSINESS, cancelled, interrupted): neutral, changes nothing

    # -- calling -------------------------------------------------------------------------
    def call(self, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        """Call `fn` through the breaker (sync)."""
        try:
            ticket = self._admit()
        except CircuitOpenError as rejected:
            if self.fallback is None:
                raise
            return self.fallback(rejected, *args, **kwargs)  # type: ignore[no-any-return]
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            self._record(exc, ticket)
            raise
        self._record(None, ticket)
        return result

    async def call_async(
        self, fn: Callable[P, Awaitable[R]], *args: P.args, **kwargs: P.kwargs
    ) -> R:
        """Await `fn` through the breaker; an async fallback is awaited."""
        try:
            ticket = self._admit()
        except CircuitOpenError as rejected:
            if self.fallback is None:
                raise
            answer = self.fallback(rejected, *args, **kwargs)
            return await answer if inspect.isawaitable(answer) else answer  # type: ignore[no-any-return]
        try:
            result = await fn(*args, **kwargs)
        except BaseException as exc:  # CancelledError too: it must free the probe's slot
            self._record(exc, ticket)
            raise
        self._record(None, ticket)
        return result

    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]:
        """Use as a decorator on sync or async functions."""
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                return await self.call_async(fn, *args, **kwargs)

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            return self.call(fn, *args, **kwargs)

        return wrapper

    def reset(self) -> None:
        """Close the circuit now."""
        with self._lock:
            if self._state is not BreakerState.CLOSED:
                self._move(BreakerState.CLOSED)
            self._failures = 0
