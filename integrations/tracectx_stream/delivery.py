"""Acknowledged output: every record a stage produces is checked, counted and owned.

The stream's outputs (paths, re-keyed span batches, alert events) go through confluent-kafka's
producer (librdkafka, in C): with kafka-python's pure-Python producer, sending cost 42-49 µs of
CPU a record, more than the analysis of a 10-span trace; here it costs 4 µs, I/O threads
included. (The stages' consumers stay on kafka-python: reading is not where the time goes, and
their group handling is what the fault tests exercise.)

`produce` only queues a record; the broker's answer comes back as a delivery report, served by
``poll``/``flush``. `Outbox` gives each record a report callback, counts what was acked and
what failed by topic, and remembers the *owner* of each failure (the trace it came from), so
the stage can undo that trace and read it again instead of committing past input whose output
was lost. librdkafka retries what the broker refuses for ``delivery.timeout.ms``; what fails
after that is a failure here. A record the broker can never take (too large, a topic it
refuses: `PERMANENT`) is *rejected* instead: counted and logged, never re-read for, since
reading its trace again would only make the same record again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Hashable
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer

from tracectx_stream.supervise import StageFailed

__all__ = [
    "PERMANENT",
    "OutputFailed",
    "OutputProducer",
    "OncePer",
    "Outbox",
    "ProducerFailed",
    "producer_config",
]

_log = logging.getLogger("tracectx.stream")
LOG_EVERY_S = 5.0  # past the producer's delivery timeout: every report has come by then


class OncePer(logging.Filter):
    """Lets one log record of each kind (level and librdkafka facility) through per
    `interval_s`, saying how many were held back: a broker down for a minute makes librdkafka
    log each reconnect attempt, hundreds of lines that say the same thing."""

    def __init__(self, interval_s: float = LOG_EVERY_S) -> None:
        super().__init__()
        self.interval_s = interval_s
        # kind -> (when one was last let through, how many held back since)
        self._last: dict[tuple[int, str], tuple[float, int]] = {}
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        kind = (record.levelno, str(args[0] if args else record.msg)[:32])
        now = time.monotonic()
        with self._lock:
            last, held = self._last.get(kind, (-self.interval_s, 0))
            if now - last < self.interval_s:
                self._last[kind] = (last, held + 1)
                return False
            if len(self._last) >= 64 and kind not in self._last:
                self._last.clear()  # a few kinds in practice: bounded whatever comes
            self._last[kind] = (now, 0)
        if held:
            record.msg = f"{record.msg} ({held} like it in the last {now - last:.0f} s)"
        return True


KAFKA_LOG = logging.getLogger("tracectx.stream.kafka")  # librdkafka's own lines
KAFKA_LOG.addFilter(OncePer())
MAX_TOPICS = 64  # topics counted by name (a stage writes to a handful)
FLUSH_TIMEOUT_S = 180.0
BLOCK_S = 120.0  # a full local queue is waited on this long (kafka-python's max_block_ms)

#: Errors a record would meet again however often it were sent: rejected, not re-read for.
PERMANENT = frozenset(
    {
        KafkaError.MSG_SIZE_TOO_LARGE,
        KafkaError.INVALID_MSG_SIZE,
        KafkaError.RECORD_LIST_TOO_LARGE,
        KafkaError.INVALID_MSG,
        KafkaError.INVALID_RECORD,
        KafkaError.TOPIC_EXCEPTION,
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
        KafkaError.CLUSTER_AUTHORIZATION_FAILED,
        KafkaError.POLICY_VIOLATION,
        KafkaError.UNSUPPORTED_FOR_MESSAGE_FORMAT,
        KafkaError._INVALID_ARG,
    }
)


def producer_config(bootstrap_servers: str, client_id: str) -> dict[str, Any]:
    """librdkafka settings for the stream's outputs: acks from every replica, retried through a
    broker restart for up to two minutes (then a failure, counted and re-read), keys hashed
    with murmur2 as the Java client and kafka-python do (a compacted paths topic, and instances
    of two versions during an upgrade, need every writer of a key to agree on its partition)."""
    return {
        "bootstrap.servers": bootstrap_servers,
        "client.id": client_id,
        "acks": "all",
        "linger.ms": 5,
        "partitioner": "murmur2_random",
        "delivery.timeout.ms": 120_000,
        "request.timeout.ms": 30_000,
        "compression.type": "none",
        # retries neither duplicate nor reorder a partition's records (a path's later version
        # stays the later one); kafka-python 3, the producer before, did the same by default
        "enable.idempotence": True,
        # librdkafka's own lines (a broker down, reconnecting) through logging, not stderr,
        # one of each kind per LOG_EVERY_S
        "logger": KAFKA_LOG,
    }


class ProducerFailed(StageFailed):
    """The producer hit a fatal error (its idempotent state is lost, or the cluster refuses
    idempotence): it takes no more records, so the instance must restart."""


class OutputProducer:
    """One confluent-kafka producer, shared by a stream's stages, and the lock that serves its
    delivery reports. It connects in the background: a broker that is down is retried, and
    shows as failed deliveries."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.fatal: KafkaError | None = None  # set once: every later record would fail too
        self.client = Producer({"error_cb": self._error, **config})
        # Reports run in whichever thread serves the producer (every stage's `send` does); a
        # thread that settles holds this while it serves them, so once its own records are
        # all answered every report, those another thread took included, has been counted.
        self.serving = threading.Lock()

    def _error(self, err: KafkaError) -> None:
        """librdkafka's client-level errors: a fatal one ends the producer's usefulness
        (the rest, a broker down, show as failed deliveries and are logged there)."""
        if err.fatal() and self.fatal is None:
            self.fatal = err
            _log.critical("tracectx stream: the producer failed for good: %s", err.str())

    def check(self) -> None:
        """Raise `ProducerFailed` once the producer hit a fatal error."""
        if self.fatal is not None:
            raise ProducerFailed(f"producer: {self.fatal.name()}: {self.fatal.str()[:200]}")

    def close(self, timeout_s: float) -> int:
        """Send what is queued (at most `timeout_s`), drop what is left (its input was not
        committed: the group reads it again), then end the producer's threads and
        connections; the number of records dropped."""
        with self.serving:
            left = int(self.client.flush(timeout_s))
            if left:  # else close() below would wait for each to time out (two minutes)
                self.client.purge(in_queue=True, in_flight=True)
                self.client.flush(0)
        close = getattr(self.client, "close", None)  # confluent-kafka >= 2.13; else when freed
        if close is not None:
            close()
        return left


class OutputFailed(Exception):
    """Output of these traces was not acknowledged: undo them and read their input again."""

    def __init__(self, owners: set[Hashable], what: str) -> None:
        super().__init__(f"{len(owners)} trace(s) with unacknowledged output ({what})")
        self.owners = owners


_COUNTING = threading.Lock()  # the stats' counters, updated by reports in any thread


class Outbox:
    """Sends through a shared producer and keeps score of the answers, for one stage."""

    def __init__(self, producer: OutputProducer, stats: Any = None) -> None:
        self.producer = producer
        self.stats = stats  # StreamStats: produced/produce_errors by topic
        self._lock = threading.Lock()
        self._failed: set[Hashable] = set()
        self._pending = 0  # records queued by this outbox whose report has not run yet
        self._errors = 0
        self._logged_at = -LOG_EVERY_S
        self._unlogged = 0
        self.last_error = ""

    def send(self, topic: str, key: bytes | None, value: bytes | None, owner: Hashable) -> None:
        """Queue one record; its answer is counted when it comes. A record the producer will
        not even queue (too large, its local queue full for ``BLOCK_S``) is refused too."""

        def report(err: KafkaError | None, _msg: Any) -> None:
            if err is None:
                self._acked(topic)
            else:
                self._refused(topic, owner, err)
            with self._lock:
                self._pending -= 1

        self.producer.check()
        deadline = None
        while True:
            try:
                with self._lock:  # counted first: the report may run in another thread
                    self._pending += 1
                self.producer.client.produce(topic, value, key, on_delivery=report)
                break
            except BufferError as exc:  # the local queue is full: wait for the broker's answers
                with self._lock:
                    self._pending -= 1
                now = time.monotonic()
                deadline = deadline or now + BLOCK_S
                if now >= deadline:
                    self._refused(topic, owner, KafkaError(KafkaError._QUEUE_FULL, str(exc)))
                    return
                self._serve(0.1)
            except KafkaException as exc:  # refused locally (too large, a bad topic name)
                with self._lock:
                    self._pending -= 1
                self._refused(topic, owner, exc.args[0])
                self.producer.check()  # `_FATAL`: the producer takes nothing any more
                return
        self._serve(0)

    def _serve(self, timeout_s: float) -> None:
        """Run the delivery reports that have come, waiting up to `timeout_s` for one (another
        thread settling serves them meanwhile)."""
        serving = self.producer.serving
        if serving.acquire(blocking=False):
            try:
                self.producer.client.poll(timeout_s)
            finally:
                serving.release()
        elif timeout_s:
            time.sleep(timeout_s)

    def _acked(self, topic: str) -> None:
        if self.stats is not None:
            with _COUNTING:
                _count(self.stats.produced, topic)

    def _refused(self, topic: str, owner: Hashable, err: KafkaError) -> None:
        # (a fatal error, the idempotent producer's state lost, is not permanent for the
        # record: its trace is re-read by the instance that replaces this one)
        permanent = err.code() in PERMANENT
        with self._lock:
            if not permanent:
                self._failed.add(owner)
            self._errors += 1
            self.last_error = f"{topic}: {err.name()}: {err.str()[:200]}"
            now = time.monotonic()
            quiet, self._unlogged = now - self._logged_at < LOG_EVERY_S, self._unlogged + 1
            if not quiet:
                self._logged_at, unlogged, self._unlogged = now, self._unlogged, 0
        if self.stats is not None:
            with _COUNTING:
                if permanent:
                    self.stats.outputs_rejected += 1
                _count(self.stats.produce_errors, topic)
        if not quiet:  # one line per LOG_EVERY_S, however many records a broker outage refuses
            _log.error(
                "tracectx stream: %d record(s) not acknowledged, the last for %s: %s",
                unlogged,
                topic,
                self.last_error,
            )

    def settle(
        self, beat: Callable[[], None] | None = None, timeout_s: float = FLUSH_TIMEOUT_S
    ) -> set[Hashable]:
        """Wait for the answer to every record this outbox queued (calling `beat` every second
        meanwhile: waiting on a broker is not a stall; records other stages queue on the shared
        producer are not waited for); the owners of those refused since the last call that may
        succeed if tried again (empty: everything was acknowledged or rejected for good).
        Raises `TimeoutError` if answers are still missing after `timeout_s`, `ProducerFailed`
        if the producer failed for good."""
        producer = self.producer
        deadline = time.monotonic() + timeout_s
        beat_at = time.monotonic() + 1.0
        while self._pending > 0:
            now = time.monotonic()
            if now >= deadline:
                raise TimeoutError(f"{self._pending} record(s) unanswered after {timeout_s:.0f} s")
            if beat is not None and now >= beat_at:
                beat()
                beat_at = now + 1.0
            with producer.serving:  # serves every stage's reports; returns on the first
                producer.client.poll(min(0.1, deadline - now))
        producer.check()
        with self._lock:
            failed, self._failed = self._failed, set()
        return failed


def _count(counter: Counter[str], topic: str) -> None:
    if topic in counter or len(counter) < MAX_TOPICS:
        counter[topic] += 1
