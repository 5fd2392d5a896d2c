"""Acknowledged output: every record a stage produces is checked, counted and owned.

kafka-python's `send` only queues a record; the broker's answer arrives later on the producer's
I/O thread, as a future. `Outbox` attaches a callback to each future, counts what was acked and
what failed by topic, and remembers the *owner* of each failure (the trace it came from), so the
stage can undo that trace and read it again instead of committing past input whose output was
lost. The producer itself retries what the broker refuses for a while (``delivery_timeout_ms``);
what fails after that is a failure here. A record the broker can never take (too large, a
topic it refuses: a non-retriable error) is *rejected* instead: counted and logged, never re-read
for, since reading its trace again would only make the same record again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Hashable
from typing import Any

from kafka.errors import KafkaTimeoutError

from tracectx_stream.partitioner import KeyPartitioner

__all__ = ["OutputFailed", "Outbox", "producer_config"]

_log = logging.getLogger("tracectx.stream")
MAX_TOPICS = 64  # topics counted by name (a stage writes to a handful)
FLUSH_TIMEOUT_S = 180.0
LOG_EVERY_S = 5.0  # past the producer's delivery timeout: every future has settled by then


def producer_config(bootstrap_servers: str, client_id: str) -> dict[str, Any]:
    """kafka-python producer settings for the stream's outputs: acks from every replica, retried
    through a broker restart for up to two minutes (then a failure, counted and re-read)."""
    return {
        "bootstrap_servers": bootstrap_servers,
        "client_id": client_id,
        "acks": "all",
        "linger_ms": 5,
        # 256 KiB batches (kafka-python's default is 16 KiB, about 14 paths): small batches
        # queue up behind those in flight, and kafka-python wakes its sender thread on every
        # send while more than one waits: 71 us of CPU a path, 47 us with these (a batch's
        # buffer grows as records come; nothing is allocated up front)
        "batch_size": 256 * 1024,
        "retries": 2**31 - 1,
        "delivery_timeout_ms": 120_000,
        "request_timeout_ms": 30_000,
        "max_block_ms": 120_000,
        "compression_type": None,
        "partitioner": KeyPartitioner(),
    }


class OutputFailed(Exception):
    """Output of these traces was not acknowledged: undo them and read their input again."""

    def __init__(self, owners: set[Hashable], what: str) -> None:
        super().__init__(f"{len(owners)} trace(s) with unacknowledged output ({what})")
        self.owners = owners


class Outbox:
    """Sends through a shared producer and keeps score of the answers, for one stage."""

    def __init__(self, producer: Any, stats: Any = None) -> None:
        self.producer = producer
        self.stats = stats  # StreamStats: produced/produce_errors by topic
        self._lock = threading.Lock()
        self._failed: set[Hashable] = set()
        self._errors = 0
        self._logged_at = -LOG_EVERY_S
        self._unlogged = 0
        self.last_error = ""

    def send(self, topic: str, key: bytes | None, value: bytes | None, owner: Hashable) -> None:
        """Queue one record; its answer is counted when it comes. A record the producer will
        not even queue (no metadata within ``max_block_ms``, a full buffer) is refused too."""
        try:
            future = self.producer.send(topic, key=key, value=value)
        except Exception as exc:
            self._refused(topic, owner, exc)
            return
        future.add_callback(self._acked, topic)
        future.add_errback(self._refused, topic, owner)

    def _acked(self, topic: str, _metadata: Any) -> None:
        if self.stats is not None:
            _count(self.stats.produced, topic)

    def _refused(self, topic: str, owner: Hashable, exc: BaseException) -> None:
        retriable = bool(getattr(exc, "retriable", False))
        with self._lock:
            if retriable:
                self._failed.add(owner)
            elif self.stats is not None:
                self.stats.outputs_rejected += 1
            self._errors += 1
            self.last_error = f"{topic}: {type(exc).__name__}: {str(exc)[:200]}"
            now = time.monotonic()
            quiet, self._unlogged = now - self._logged_at < LOG_EVERY_S, self._unlogged + 1
            if not quiet:
                self._logged_at, unlogged, self._unlogged = now, self._unlogged, 0
        if self.stats is not None:
            _count(self.stats.produce_errors, topic)
        if not quiet:  # one line per LOG_EVERY_S, however many records a broker outage refuses
            _log.error(
                "tracectx stream: %d record(s) not acknowledged, the last for %s: %r",
                unlogged,
                topic,
                exc,
            )

    def settle(
        self, beat: Callable[[], None] | None = None, timeout_s: float = FLUSH_TIMEOUT_S
    ) -> set[Hashable]:
        """Wait for every queued record's answer (calling `beat` every second meanwhile: waiting
        on a broker is not a stall); the owners of those refused since the last call that may
        succeed if tried again (empty: everything was acknowledged or rejected for good)."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self.producer.flush(timeout=min(1.0, max(deadline - time.monotonic(), 0.01)))
                break
            except KafkaTimeoutError:
                if time.monotonic() >= deadline:
                    raise
                if beat is not None:
                    beat()
        with self._lock:
            failed, self._failed = self._failed, set()
        return failed


def _count(counter: Counter[str], topic: str) -> None:
    if topic in counter or len(counter) < MAX_TOPICS:
        counter[topic] += 1
