"""Alert delivery off the hot path: a background sender with a bounded queue.

`Dispatcher.put` never blocks: when the queue is full the item is dropped, counted and logged
(first drop, then every 100th). The sender thread retries failed deliveries with exponential
backoff (tenacity) and gives up after ``attempts``, counting a failure; the app is never held
up by a dead or slow receiver.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

import tenacity

__all__ = ["Dispatcher", "join_queue"]

_log = logging.getLogger("tracectx.alerting")
_STOP = object()


def join_queue(q: queue.Queue[Any], timeout: float) -> bool:
    """`q.join()` with a timeout: True once every item put so far was marked done."""
    done = threading.Event()

    def wait() -> None:
        q.join()
        done.set()

    threading.Thread(target=wait, daemon=True).start()
    return done.wait(timeout)


class Dispatcher:
    """Runs ``deliver(item)`` for queued items on one daemon thread."""

    def __init__(
        self,
        deliver: Callable[[Any], None],
        *,
        name: str = "tracectx-alerts",
        max_queue: int = 1000,
        attempts: int = 5,
        backoff: float = 0.2,
        max_backoff: float = 5.0,
    ) -> None:
        self.name = name
        self.delivered = self.dropped = self.failed = 0
        self._queue: queue.Queue[Any] = queue.Queue(max_queue)
        self._send = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(attempts),
            wait=tenacity.wait_exponential_jitter(multiplier=backoff, max=max_backoff),
            reraise=True,
        ).wraps(deliver)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def put(self, item: Any) -> bool:
        """Queue `item`; False (and counted) if the queue is full."""
        try:
            self._queue.put_nowait(item)
            return True
        except queue.Full:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 100 == 0:
                _log.warning(
                    "tracectx: %s queue full; %d alert(s) dropped", self.name, self.dropped
                )
            return False

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is _STOP:
                    return
                self._send(item)
                self.delivered += 1
            except Exception as exc:
                self.failed += 1
                _log.warning("tracectx: %s gave up on an alert: %s", self.name, exc)
            finally:
                self._queue.task_done()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything queued so far was delivered or given up (True if so)."""
        return join_queue(self._queue, timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Stop after what is queued (waiting at most `timeout`)."""
        try:
            self._queue.put(_STOP, timeout=timeout)
        except queue.Full:
            return
        self._thread.join(timeout)
