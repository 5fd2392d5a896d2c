"""The fleet flow window is read by the HTTP thread while the worker counts into it."""

from __future__ import annotations

import threading
import time

from tracectx_stream.paths import FlowWindow


def _record(i: int) -> dict[str, object]:
    return {
        "origin": {"service": f"svc{i % 50}", "name": f"op{i}", "span_id": "1"},
        "propagators": [{"service": f"mid{i % 7}", "name": f"hop{i % 300}", "span_id": "2"}],
        "absorber": {"service": f"edge{i % 3}", "name": "handle", "span_id": "3"},
        "kind": "TRANSIENT",
        "outcome": "absorbed",
    }


def test_snapshots_while_paths_are_counted_never_fail() -> None:
    window = FlowWindow(horizon_s=1.0, bucket_s=1e-3)  # new buckets all the time, 1,000 at most
    stop = threading.Event()

    def count() -> None:
        i = 0
        while not stop.is_set():
            window.add(_record(i))
            i += 1

    failures: list[BaseException] = []

    def guarded() -> None:
        try:
            count()
        except BaseException as exc:  # the test fails below, not silently in the thread
            failures.append(exc)

    writer = threading.Thread(target=guarded)
    writer.start()
    try:
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            snap = window.snapshot()
            assert snap["window_s"] == 1.0
            assert isinstance(snap["overflow"], int)
    finally:
        stop.set()
        writer.join()
    assert not failures
    assert window.snapshot(now=time.time())["window_s"] == 1.0
