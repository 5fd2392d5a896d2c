"""What the Celery integration does, set once by `instrument()`."""

from __future__ import annotations

import dataclasses

__all__ = ["Options", "current", "set_options"]


@dataclasses.dataclass(frozen=True, slots=True)
class Options:
    """Args:
    link_to_publisher: the run span links to the publish span instead of being its child
        (messaging semconv allows both; a child keeps one trace, a link starts a new one).
    retry_transient: retry TRANSIENT failures of every task (a task's own
        ``retry_transient=`` attribute wins); BUSINESS and FATAL are never retried.
    retry_backoff: first backoff in seconds, doubled per attempt, full jitter.
    retry_backoff_max: longest backoff in seconds.
    max_retries: attempts after the first, unless the task sets ``max_retries``.
    """

    link_to_publisher: bool = False
    retry_transient: bool = False
    retry_backoff: float = 1.0
    retry_backoff_max: float = 60.0
    max_retries: int = 3


_current = Options()


def current() -> Options:
    return _current


def set_options(options: Options) -> None:
    global _current
    _current = options
