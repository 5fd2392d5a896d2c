"""The runnable services in examples/, started as a user would, against a real Redis, Celery
worker and Kafka-protocol broker; the spans of every process read back with
``tracectx graph --format json`` and the error's origin and outcome checked."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tracectx.viz.sources import load_spans
from tracectx_demo.embedded import Service, free_port, redis_server, wait_for_port

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
pytestmark = pytest.mark.integration


class Processes:
    """Example processes, each logging to a file, all stopped at the end of the test."""

    def __init__(self, spans: Path, **env: str) -> None:
        self.spans = spans
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "TRACECTX_"))}
        self.env = {**clean, "SPANS_DIR": str(spans), "PYTHONUNBUFFERED": "1", **env}
        self.running: list[tuple[subprocess.Popen[bytes], Path]] = []

    def start(self, cwd: Path, *argv: str) -> subprocess.Popen[bytes]:
        log = self.spans.parent / f"{Path(argv[0]).stem}-{len(self.running)}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [sys.executable, *argv],
                cwd=cwd,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.running.append((proc, log))
        return proc

    def logs(self) -> str:
        return "\n".join(f"--- {log.name}\n{log.read_text()[-2000:]}" for _, log in self.running)

    def wait(self, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
        try:
            code = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"still running after {timeout}s\n{self.logs()}") from None
        assert code == 0, self.logs()

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        """SIGTERM, as a service manager stops a service; it must flush and exit on its own."""
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"did not stop on SIGTERM\n{self.logs()}") from None

    def kill_all(self) -> None:
        for proc, _ in self.running:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Processes]:
    processes = Processes(tmp_path / "spans")
    yield processes
    processes.kill_all()


@pytest.fixture(scope="module")
def redis() -> Iterator[Service]:
    service = redis_server().start()
    yield service
    service.stop()


def graph(spans: Path) -> list[dict[str, Any]]:
    """``tracectx graph --format json`` over every spans file, as the docs show it."""
    files = sorted(str(p) for p in spans.glob("*.jsonl"))
    out = subprocess.run(
        [sys.executable, "-m", "tracectx", "graph", "--format", "json", *files],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    traces: list[dict[str, Any]] = json.loads(out.stdout)["traces"]
    return traces


def error_paths(traces: list[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(error, the trace's spans by id) for every error path."""
    return [
        (error, {s["span_id"]: s for s in t["spans"]})
        for t in traces
        for error in t["errors"] or []
    ]


def test_http_celery(procs: Processes, redis: Service, tmp_path: Path):
    """Starlette under uvicorn -> Celery task (prefork worker) that refuses the payment: the
    origin is the worker's run span, and the error escapes as the API's 400 answer."""
    here = EXAMPLES / "http_celery"
    procs.env["REDIS_URL"] = f"redis://{redis.address}/5"
    worker = procs.start(
        here,
        *("-m", "celery", "-A", "tasks", "worker", "-c", "2", "-l", "warning"),
        *("--without-mingle", "--without-gossip", "--without-heartbeat"),
    )
    port = free_port()
    api = procs.start(here, "-m", "uvicorn", "app:app", "--port", str(port))
    wait_for_port(port, 60, api)  # type: ignore[arg-type]
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
        ok = client.post("/pay", json={"account_id": "acc_1", "amount": 5})
        refused = client.post("/pay", json={"account_id": "acc_2", "amount": 500})
    assert ok.json() == {"status": "charged"}, procs.logs()
    assert refused.status_code == 400
    problem = refused.json()
    assert (problem["kind"], problem["code"]) == ("BUSINESS", "E_FUNDS")
    procs.stop(api)
    procs.stop(worker)

    files = {p.name for p in procs.spans.iterdir()}
    assert "shop-api.otlp.jsonl" in files
    assert any(f.startswith("shop-worker-") for f in files), files  # a prefork child's own file
    ((error, spans),) = error_paths(graph(procs.spans))
    assert error["error_id"] == problem["error_id"]
    assert (spans[error["origin"]]["name"], spans[error["origin"]]["service"]) == (
        "run shop.charge",
        "shop-worker",
    )
    assert error["outcome"] == "escaped" and error["exact"]
    assert error["metadata"] == {"account_id": "acc_2"}


def test_kafka_dlq(procs: Processes, bootstrap: str):
    """producer -> worker that dead-letters a BUSINESS error -> DLQ consumer: one trace, the
    origin in the worker (exact), absorbed, and the DLQ consumer sees the same error id."""
    here = EXAMPLES / "kafka_dlq"
    procs.env["KAFKA_BOOTSTRAP"] = bootstrap
    worker = procs.start(here, "worker.py", "2")
    dlq = procs.start(here, "dlq.py", "1")
    producer = procs.start(here, "producer.py", "o-1", "o-2-bad")
    procs.wait(producer)
    procs.wait(worker, 90)
    procs.wait(dlq, 90)

    assert {p.name for p in procs.spans.iterdir()} == {
        "orders-api.otlp.jsonl",
        "shipping.otlp.jsonl",
        "support.otlp.jsonl",
    }
    ((error, spans),) = error_paths(graph(procs.spans))
    origin = spans[error["origin"]]
    assert origin["service"] == "shipping" and error["exact"]
    assert (error["kind"], error["code"]) == ("BUSINESS", "E_ADDRESS")
    assert error["outcome"] == "absorbed"
    # dead-lettering handles it in the worker's record span; the DLQ consumer's record span
    # marks the same error id handled when it reads the envelope
    assert (spans[error["absorber"]]["service"], origin["name"]) == ("shipping", "ship")
    (dlq_span,) = [s for s in spans.values() if s["name"] == "process orders.dlq"]
    assert dlq_span["service"] == "support"
    handled = [e for e in dlq_span["events"] if e["name"] == "tracectx.error.handled"]
    assert [e["attributes"]["tracectx.error.id"] for e in handled] == [error["error_id"]]
    assert "ticket for o-2-bad" in procs.logs()


def test_asyncio_pools(procs: Processes):
    """asyncio -> thread pool -> process pool (fork): the origin is in the pool's child
    process (its own spans file), absorbed by the job's span in the parent."""
    proc = procs.start(EXAMPLES / "asyncio_pools", "worker.py", "job-1", "job-2-bad")
    procs.wait(proc)
    assert "'job-2-bad': None" in procs.logs()

    files = sorted(p.name for p in procs.spans.iterdir())
    assert "scorer.otlp.jsonl" in files and any(f.startswith("scorer-") for f in files), files
    traces = graph(procs.spans)
    ((error, spans),) = error_paths(traces)
    assert spans[error["origin"]]["name"] == "score"
    assert (spans[error["absorber"]]["name"], error["outcome"]) == ("job job-2-bad", "absorbed")
    # the origin span is in the pool child's own file, not the parent's
    children = [p for p in procs.spans.iterdir() if p.name.startswith("scorer-")]
    assert error["origin"] in {s.span_id for s in load_spans(children).spans}
    parent = load_spans([procs.spans / "scorer.otlp.jsonl"]).spans
    assert error["origin"] not in {s.span_id for s in parent}
