"""Supervised stage loops: a stage survives what Kafka, Redis or the network can do to it.

Each stage (re-key, assemble, alerts) is a loop of `step()` calls over its own consumer. Whatever
a step raises — a lost connection, a `CommitFailedError` after a rebalance, an output the broker
never acknowledged, a bug — the supervisor logs and counts it, lets the stage drop what it held
(`abandon`: close the consumer without committing; input not committed is read again, which is
how Kafka consumers recover), waits with exponential backoff and opens the stage again. A stage
failing without a single good step for `give_up_s` cannot recover on its own: the supervisor
says so in one log line and stops the instance, which then exits non-zero for its orchestrator
to restart — never an instance that lives on with a dead stage.

Health is what `/healthz` and `/readyz` report (`StageHealth`): the last good step, failures,
the last error, lag and partitions owned.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from typing import Any, Protocol

__all__ = ["Stage", "StageFailed", "StageHealth", "close_quietly", "supervise"]

_log = logging.getLogger("tracectx.stream")
BACKOFF_MIN_S = 0.5
BACKOFF_MAX_S = 10.0


class Stage(Protocol):
    """A stage's loop, in the pieces the supervisor drives."""

    name: str

    def open(self) -> None:
        """Connect (a consumer, its subscription)."""

    def step(self) -> None:
        """One poll and what follows from it."""

    def close(self) -> None:
        """A clean stop: commit what is done and close."""

    def abandon(self) -> None:
        """After a failure: drop in-flight state and close without committing (must not raise)."""


class StageFailed(Exception):
    """A stage failed for longer than it is allowed to: the instance must restart."""


@dataclasses.dataclass
class StageHealth:
    """What an operator and a liveness probe need to know of one stage."""

    name: str
    last_progress: float = dataclasses.field(default_factory=time.monotonic)
    alive: bool = False
    steps: int = 0
    failures: int = 0
    restarts: int = 0
    failing_since: float | None = None
    last_error: str = ""
    lag: int = -1  # records behind the end of the owned partitions (-1: not known yet)
    partitions: int = 0
    cpu_s: float = 0.0  # CPU time of this stage's thread in its steps

    def progress(self) -> None:
        self.last_progress = time.monotonic()
        self.failing_since = None
        self.steps += 1

    def beat(self) -> None:
        """Still working inside a long step (a backlog of traces to analyse): not stalled."""
        self.last_progress = time.monotonic()

    def failed(self, exc: BaseException) -> None:
        self.failures += 1
        if self.failing_since is None:
            self.failing_since = time.monotonic()
        self.last_error = f"{type(exc).__name__}: {str(exc)[:300]}"

    def stalled(self, stall_s: float, now: float | None = None) -> bool:
        """Dead, or no good step for `stall_s` (stuck, or failing over and over)."""
        now = time.monotonic() if now is None else now
        return not self.alive or now - self.last_progress > stall_s

    def as_dict(self, now: float | None = None) -> dict[str, Any]:
        now = time.monotonic() if now is None else now
        return {
            "name": self.name,
            "alive": self.alive,
            "last_progress_age_s": round(now - self.last_progress, 3),
            "last_progress_unix": round(time.time() - (now - self.last_progress), 3),
            "steps": self.steps,
            "failures": self.failures,
            "restarts": self.restarts,
            "failing_for_s": None
            if self.failing_since is None
            else round(now - self.failing_since, 3),
            "last_error": self.last_error,
            "lag": self.lag,
            "partitions": self.partitions,
            "cpu_s": round(self.cpu_s, 3),
        }


def supervise(
    stage: Stage,
    health: StageHealth,
    stop: threading.Event,
    *,
    give_up_s: float,
) -> None:
    """Run `stage` until `stop` is set; raise `StageFailed` once it has failed for `give_up_s`
    without a good step in between."""
    delay = BACKOFF_MIN_S
    health.alive = True
    health.last_progress = time.monotonic()
    try:
        while not stop.is_set():
            try:
                stage.open()
                while not stop.is_set():
                    cpu = time.thread_time()
                    stage.step()
                    health.cpu_s += time.thread_time() - cpu
                    health.progress()
                    delay = BACKOFF_MIN_S
                stage.close()
                return
            except StageFailed:  # reopening cannot help (the producer failed for good)
                stage.abandon()
                raise
            except Exception as exc:
                health.failed(exc)
                stage.abandon()
                failing = time.monotonic() - (health.failing_since or time.monotonic())
                if failing >= give_up_s:
                    _log.critical(
                        "tracectx stream: stage %s cannot recover (failing for %.0f s, last "
                        "error %s); stopping the instance",
                        stage.name,
                        failing,
                        health.last_error,
                    )
                    raise StageFailed(f"stage {stage.name}: {health.last_error}") from exc
                _log.warning(
                    "tracectx stream: stage %s failed (%s); reopening in %.1f s",
                    stage.name,
                    health.last_error,
                    delay,
                    exc_info=not _expected(exc),
                )
                health.restarts += 1
                stop.wait(delay)
                delay = min(delay * 2, BACKOFF_MAX_S)
    finally:
        health.alive = False


def close_quietly(consumer: Any, timeout_ms: int = 10_000) -> None:
    """Close a consumer without committing, after a failure: whatever the broker says (or does
    not say), the stage goes on to reopen."""
    if consumer is None:
        return
    try:
        consumer.close(autocommit=False, timeout_ms=timeout_ms)
    except Exception:
        _log.debug("tracectx stream: consumer close failed", exc_info=True)


def _expected(exc: BaseException) -> bool:
    """Kafka's own errors and unacknowledged output are expected faults (no stack trace)."""
    from kafka.errors import KafkaError

    from tracectx_stream.delivery import OutputFailed

    return isinstance(exc, KafkaError | OutputFailed | ConnectionError | TimeoutError)
