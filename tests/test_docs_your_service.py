"""docs/install.md, docs/your-service.md and the README's "Your service": every example runs
as printed (only hosts, ports and topic names swapped for the test's own), against a real
Redis, Celery worker and Kafka-protocol broker."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
import tomllib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tracectx.viz.sources import load_spans
from tracectx_demo.embedded import Service, redis_server

ROOT = Path(__file__).resolve().parents[1]
INSTALL = ROOT / "docs" / "install.md"
SERVICE = ROOT / "docs" / "your-service.md"


def blocks(path: Path, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", path.read_text(), flags=re.S)


def block_with(path: Path, lang: str, needle: str) -> str:
    (block,) = [b for b in blocks(path, lang) if needle in b]
    return block


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "TRACECTX_"))}
    return {**env, "PYTHONPATH": str(ROOT), **extra}


def run_python(code: str, cwd: Path, timeout: float = 60) -> str:
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


class TestInstall:
    def test_every_extra_is_in_the_table_and_every_row_is_an_extra(self):
        extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
            "optional-dependencies"
        ]
        rows = set(re.findall(r"^\| `([a-z-]+)` \|", INSTALL.read_text(), flags=re.M))
        assert rows == set(extras) - {"dev"}

    def test_all_has_no_broker_binary_and_every_integration(self):
        extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
            "optional-dependencies"
        ]
        (all_,) = extras["all"]
        named = set(re.search(r"\[(.*)\]", all_).group(1).split(","))  # type: ignore[union-attr]
        assert {"celery", "kafka", "aiokafka", "confluent-kafka", "asgi"} <= named
        assert not any("calfkit" in r for e in ("all", "demo", "stream") for r in extras[e])

    def test_install_lines_name_real_extras(self):
        extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
            "optional-dependencies"
        ]
        for block in blocks(INSTALL, "bash"):
            for names in re.findall(r"tracectx\[([a-z,-]+)\]", block):
                assert set(names.split(",")) <= set(extras)
            for names in re.findall(r"\./demo\[([a-z,-]+)\]", block):
                demo = tomllib.loads((ROOT / "demo" / "pyproject.toml").read_text())
                assert set(names.split(",")) <= set(demo["project"]["optional-dependencies"])


def test_setup_call_as_printed(tmp_path: Path):
    """The annotated setup call: service, file, OTLP and sampling as its comments say."""
    code = block_with(SERVICE, "python", "sample_rate=0.25")
    out = run_python(
        code.replace("http://collector:4318", "http://127.0.0.1:9")
        + "s = tracectx.bootstrap.current()\n"
        + "print(s.service_name, s.spans_file, s.otlp, s.provider.sampler.get_description())\n"
        + "tracectx.teardown(timeout=0.1)\n",
        tmp_path,
    )
    service, path, otlp, sampler = out.split()
    assert (service, path, otlp) == ("checkout", "spans/checkout.otlp.jsonl", "True")
    assert sampler.startswith("ParentBased{root:TraceIdRatioBased{0.25}")


def test_http_example_and_the_graph_commands(tmp_path: Path):
    """The Starlette block answers problem+json; the graph commands run on its spans."""
    code = block_with(SERVICE, "python", "Starlette(")
    out = run_python(
        code
        + "from starlette.testclient import TestClient\n"
        + "r = TestClient(app).post('/pay')\n"
        + "print(r.status_code, r.headers['content-type'], r.json()['code'])\n",
        tmp_path,
    )
    assert out.split() == ["400", "application/problem+json", "E_FUNDS"]
    (span,) = load_spans([tmp_path / "spans" / "api.otlp.jsonl"]).spans
    assert span.attributes["tracectx.error.role"] == "origin"

    for line in block_with(SERVICE, "bash", "tracectx graph").strip().splitlines():
        argv = shlex.split(line.split("  #")[0])
        assert argv[0] == "tracectx"
        files = [str(p) for p in (tmp_path / "spans").glob("*.jsonl")]
        argv = [sys.executable, "-m", "tracectx", *argv[1:-1], *files]
        result = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, (line, result.stderr)
    assert "E_FUNDS" in (tmp_path / "graph.html").read_text()


@pytest.fixture(scope="module")
def redis() -> Iterator[Service]:
    service = redis_server().start()
    yield service
    service.stop()


@pytest.mark.integration
def test_celery_example(tmp_path: Path, redis: Service):
    """The tasks module under a real worker; the caller gets the worker's error."""
    url = f"redis://{redis.address}/6"
    tasks = block_with(SERVICE, "python", "worker_init").replace("redis://127.0.0.1:6379/0", url)
    (tmp_path / "tasks.py").write_text(tasks)
    worker = subprocess.Popen(
        [
            *(sys.executable, "-m", "celery", "-A", "tasks", "worker", "-P", "prefork", "-c", "1"),
            *("--without-mingle", "--without-gossip", "--without-heartbeat", "-l", "warning"),
        ],
        cwd=tmp_path,
        env=clean_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        out = run_python(
            "import tracectx\n"
            "tracectx.setup('api', spans_file='spans/{service}.otlp.jsonl')\n"
            "from tasks import charge\n"
            "try:\n"
            "    charge.delay('acc_1', 500).get(timeout=60)\n"
            "except tracectx.TracedError as err:\n"
            "    print(err.kind.name, err.code)\n",
            tmp_path,
            timeout=90,
        )
        assert out.split() == ["BUSINESS", "E_FUNDS"]
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(30)
    spans = load_spans(sorted((tmp_path / "spans").glob("*.jsonl"))).spans
    (origin,) = [s for s in spans if s.attributes.get("tracectx.error.role") == "origin"]
    assert (origin.name, origin.service) == ("run tasks.charge", "shop-worker")
    assert len({s.trace_id for s in spans}) == 1


@pytest.mark.integration
def test_kafka_example(tmp_path: Path, bootstrap: str, make_topic):
    """The consumer loop dead-letters the record it cannot ship, with the error's identity."""
    from kafka import KafkaConsumer, KafkaProducer

    from tracectx_kafka import dlq_error

    topic = make_topic(f"orders-{uuid.uuid4().hex[:8]}")
    make_topic(f"{topic}.dlq")
    code = (
        block_with(SERVICE, "python", "send_to_dlq")
        .replace("127.0.0.1:9092", bootstrap)
        .replace('"orders"', f'"{topic}"')
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=clean_env(),
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        producer = KafkaProducer(bootstrap_servers=bootstrap)
        producer.send(topic, key=b"o-1", value=b"{}").get(30)
        producer.close()
        dlq = KafkaConsumer(
            f"{topic}.dlq",
            bootstrap_servers=bootstrap,
            auto_offset_reset="earliest",
            consumer_timeout_ms=90_000,
        )
        record = next(iter(dlq))
        dlq.close()
        error = dlq_error(record)
        assert error is not None and (error.kind.name, error.code) == ("BUSINESS", "E_ADDRESS")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # a service stopped by its manager: spans flushed
        proc.wait(30)
    deadline = time.monotonic() + 10
    path = tmp_path / "spans" / "shipping.otlp.jsonl"
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    spans = load_spans([path]).spans
    (origin,) = [s for s in spans if s.attributes.get("tracectx.error.role") == "origin"]
    assert origin.name == "ship"
    assert origin.attributes["tracectx.error.id"] == error.error_id


def test_readme_your_service_block_runs(tmp_path: Path):
    readme = ROOT / "README.md"
    code = block_with(readme, "python", "tracectx.setup(")
    run_python(code, tmp_path)
    assert list((tmp_path / "spans").glob("*.jsonl"))
