"""Real redis-server and real Celery worker processes (prefork and solo) for the Celery tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.celery.worker_app import make_app
from tracectx.viz.model import Span
from tracectx.viz.sources import load_spans
from tracectx_demo.embedded import Service, redis_server

ROOT = Path(__file__).resolve().parents[3]
#: Inbound baggage keys the test workers take as metadata (``TRACECTX_BAGGAGE_ALLOWLIST``).
WORKER_ALLOWLIST = "tenant_id"


@pytest.fixture(scope="session")
def redis() -> Iterator[Service]:
    service = redis_server().start()
    yield service
    service.stop()


class Worker:
    """A `celery worker` process and the spans it wrote."""

    def __init__(self, broker: str, pool: str, serializer: str, **env: str) -> None:
        self.spans_dir = tempfile.mkdtemp(prefix="tracectx-worker-spans-")
        self.log = Path(self.spans_dir) / "worker.log"
        self.broker, self.pool, self.serializer = broker, pool, serializer
        self.env = {
            **os.environ,
            "TRACECTX_TEST_BROKER": broker,
            "TRACECTX_TEST_SERIALIZER": serializer,
            "TRACECTX_TEST_SPANS": self.spans_dir,
            # a pickle worker refuses to run as root (CI containers are root); loopback only
            **({"C_FORCE_ROOT": "1"} if serializer == "pickle" else {}),
            # the workers trust inbound baggage for this key only (see WORKER_ALLOWLIST)
            "TRACECTX_BAGGAGE_ALLOWLIST": WORKER_ALLOWLIST,
            **env,
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def argv(self, *extra: str) -> list[str]:
        return [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "tests.integration.celery.worker_app",
            "worker",
            "-P",
            self.pool,
            "-c",
            "2",
            "-l",
            "info",
            "--without-mingle",
            "--without-gossip",
            "--without-heartbeat",
            "-n",
            f"w{os.getpid()}-{time.monotonic_ns()}@localhost",
            *extra,
        ]

    def start(self, *extra: str) -> Worker:
        argv = self.argv(*extra)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                argv,
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        # Readiness by a file the worker writes: pinging would leave a pidbox consumer in this
        # process's kombu pool, which kombu then closes in every later fork (and hangs there).
        ready = Path(self.spans_dir) / "ready"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker died: {self.log.read_text()[-3000:]}")
            if ready.exists():
                return self
            time.sleep(0.05)
        self.stop()  # else a worker that never got ready outlives the test run
        raise RuntimeError(f"worker not ready: {self.log.read_text()[-3000:]}")

    def children(self) -> list[int]:
        assert self.proc is not None
        out = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True)
        return [int(pid) for pid in out.stdout.split()]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)

    def spans(self) -> list[Span]:
        return load_spans(sorted(Path(self.spans_dir).glob("spans-*.jsonl"))).spans

    def wait_for_span(self, predicate, timeout: float = 20.0) -> Span:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [s for s in self.spans() if predicate(s)]
            if found:
                return found[0]
            time.sleep(0.1)
        names = sorted({s.name for s in self.spans()})
        raise AssertionError(f"no such worker span; have {names}\n{self.log.read_text()[-3000:]}")


class Beat(Worker):
    """A `celery beat` process running the entries of `schedule` (see
    ``worker_app.beat_schedule``), and the spans it wrote."""

    def __init__(self, broker: str, schedule: dict[str, dict[str, object]]) -> None:
        import json

        super().__init__(broker, "solo", "json", TRACECTX_TEST_BEAT=json.dumps(schedule))

    def argv(self, *extra: str) -> list[str]:
        return [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "tests.integration.celery.worker_app",
            "beat",
            "-s",
            str(Path(self.spans_dir) / "schedule.db"),
            "--max-interval",
            "1",
            "-l",
            "info",
            *extra,
        ]


def _worker(redis: Service, pool: str, serializer: str, db: int, **env: str) -> Iterator[Worker]:
    worker = Worker(f"redis://{redis.address}/{db}", pool, serializer, **env).start()
    yield worker
    worker.stop()


@pytest.fixture(scope="session")
def prefork_json(redis: Service) -> Iterator[Worker]:
    yield from _worker(redis, "prefork", "json", 1)


@pytest.fixture(scope="session")
def solo_pickle(redis: Service) -> Iterator[Worker]:
    yield from _worker(redis, "solo", "pickle", 2)


@pytest.fixture(scope="session")
def celery_instrumented() -> Iterator[None]:
    """The test process (the caller) is instrumented like an app would be."""
    from tracectx_celery import instrument, uninstrument

    instrument()
    yield
    uninstrument()


@pytest.fixture
def app_for(celery_instrumented):
    """Client apps for a worker, closed afterwards: kombu's pools in this process would
    otherwise be cleaned up in every later fork (process-pool tests), over dead sockets."""
    apps = []

    def make(worker: Worker):
        app = make_app(worker.broker, worker.serializer)
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.close()
