"""Retry errors whose kind's policy says they are retryable (TRANSIENT by default).

Built on tenacity: exponential backoff with jitter, bounded attempts, the *original* exception
re-raised when attempts run out. Each retry is an event on the current span (attempt number,
wait, error id), so the visualiser can group attempts. Works on sync and async functions.

With `tracectx.traced` the order of the two decorators does not matter: the retry always ends
up outside, so each attempt is its own span (the origin of its error, as OTel's HTTP
conventions make each resend its own span) and the retry events go on the span of the code
that called the retried function — the operation that decided to wait and try again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, overload

import tenacity
from opentelemetry import trace

from tracectx import semconv
from tracectx.classify import classify
from tracectx.errors import error_id, type_name
from tracectx.recording import OUTSIDE_TRACED_ATTR

__all__ = ["is_retryable", "retry_transient"]

F = TypeVar("F", bound=Callable[..., Any])


def is_retryable(exc: BaseException) -> bool:
    """True if `exc`'s kind policy allows a retry."""
    return isinstance(exc, Exception) and classify(exc).policy.retryable


def _record_attempt(state: tenacity.RetryCallState) -> None:
    outcome = state.outcome
    exc = outcome.exception() if outcome is not None else None
    span = trace.get_current_span()
    if exc is None or not span.is_recording():
        return
    wait = state.next_action.sleep if state.next_action is not None else 0.0
    span.add_event(
        semconv.EVENT_RETRY,
        attributes={
            semconv.ATTR_ATTEMPT: state.attempt_number,
            semconv.ATTR_RETRY_WAIT_S: float(wait),
            semconv.ATTR_ID: error_id(exc),
            semconv.ATTR_KIND: classify(exc).name,
            semconv.ATTR_ERROR_TYPE: type_name(exc),  # as on error records
        },
    )
    span.set_attribute(semconv.ATTR_ATTEMPT, state.attempt_number + 1)


@overload
def retry_transient(fn: F, /) -> F: ...
@overload
def retry_transient(
    *,
    attempts: int = 5,
    initial: float = 0.1,
    maximum: float = 10.0,
    jitter: float = 0.1,
    sleep: Callable[[float], Any] | None = None,
) -> Callable[[F], F]: ...
def retry_transient(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    attempts: int = 5,
    initial: float = 0.1,
    maximum: float = 10.0,
    jitter: float = 0.1,
    sleep: Callable[[float], Any] | None = None,
) -> Any:
    """Retry retryable errors: ``@retry_transient`` or ``@retry_transient(attempts=3)``.

    Waits grow as ``initial * 2**n`` plus up to `jitter` seconds, capped at `maximum`.
    Non-retryable errors (BUSINESS, FATAL, UNKNOWN) propagate at once.

    Args:
        attempts: total tries, the first included.
        sleep: injectable sleep (sync or async to match `fn`), for tests.
    """
    if attempts < 1:
        raise ValueError("attempts must be at least 1")
    options: dict[str, Any] = {
        "retry": tenacity.retry_if_exception(is_retryable),
        "stop": tenacity.stop_after_attempt(attempts),
        "wait": tenacity.wait_exponential_jitter(multiplier=initial, max=maximum, jitter=jitter),
        "before_sleep": _record_attempt,
        "reraise": True,
    }
    if sleep is not None:
        options["sleep"] = sleep

    def decorator(target: Callable[..., Any]) -> Any:
        wrapped = tenacity.retry(**options)(target)
        setattr(wrapped, OUTSIDE_TRACED_ATTR, (decorator, target))  # @traced above goes inside
        return wrapped

    return decorator(fn) if fn is not None else decorator
