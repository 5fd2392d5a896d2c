"""The README's first command: `tracectx demo` runs the whole pipeline on embedded defaults."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tracectx import semconv as sc
from tracectx.viz import analyse
from tracectx.viz.sources import load_spans

pytestmark = pytest.mark.integration


def run_demo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tracectx", "demo", *args],
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_demo_with_external_redis_and_alertmanager(tmp_path: Path):
    import httpx

    from tracectx_demo.embedded import alertmanager, redis_server

    with redis_server() as redis, alertmanager() as am:
        out = run_demo(
            "--out",
            str(tmp_path),
            "--broker-url",
            f"redis://{redis.address}/0",
            "--alertmanager",
            f"http://{am.address}",
        )
        assert out.returncode == 0, out.stderr[-3000:]
        assert f"redis://{redis.address}/0" in out.stdout
        names = {
            a["labels"]["alertname"]
            for a in httpx.get(f"http://{am.address}/api/v2/alerts", timeout=5).json()
        }
    assert {"tracectx_fatal_error", "tracectx_unknown_error", "payment-business-burst"} <= names


def test_demo_exports_over_otlp_and_prints_jaeger_links(tmp_path: Path):
    import os
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    posts: list[tuple[str, int]] = []

    class Collector(BaseHTTPRequestHandler):  # an OTLP/HTTP receiver, as Jaeger runs on :4318
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            posts.append((self.path, len(body)))
            self.send_response(200)
            self.send_header("content-type", "application/x-protobuf")
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{server.server_port}"}
    try:
        out = subprocess.run(
            [sys.executable, "-m", "tracectx", "demo", "--out", str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=180,
            env=env,
        )
    finally:
        server.shutdown()
    assert out.returncode == 0, out.stderr[-3000:]
    assert posts and all(path == "/v1/traces" and size > 0 for path, size in posts)
    assert "http://localhost:16686/trace/" in out.stdout  # the deep links


def test_demo_runs_end_to_end(tmp_path: Path):
    out = run_demo("--out", str(tmp_path))
    assert out.returncode == 0, out.stderr[-3000:]
    text = out.stdout
    assert "answer: 500 application/problem+json" in text
    assert "alert tracectx_fatal_error" in text and "alert payment-business-burst" in text
    for name in ("errors.html", "spans.otlp.jsonl", "errors.mmd"):
        assert (tmp_path / name).stat().st_size > 0

    spans = load_spans([tmp_path / "spans.otlp.jsonl"]).spans
    assert len({s.trace_id for s in spans}) == 1  # every hop in the request's trace
    names = {s.name for s in spans}
    assert {
        "POST /checkout",
        "run payments.capture",
        "run coupons.redeem",
        "send orders",
        "process orders",
        "process orders.dlq",
        "task audit (fire-and-forget)",  # work nobody waited for: its own span
    } <= names
    by_name = {s.name: s for s in spans}
    shipping, dlq = by_name["shipping.plan"], by_name["process orders.dlq"]
    assert dlq.attributes[sc.ATTR_ID] == shipping.attributes[sc.ATTR_ID]
    assert dlq.attributes[sc.ATTR_ROLE] == sc.ROLE_ABSORBED
    attempts = [s for s in spans if s.name == "run payments.capture"]
    assert sorted(s.attributes[sc.ATTR_ATTEMPT] for s in attempts) == [1, 2]

    (analysis,) = analyse(load_spans([tmp_path / "spans.otlp.jsonl"]))
    kinds = sorted(path.kind for path in analysis.errors)
    assert kinds == ["BUSINESS", "BUSINESS", "FATAL", "TRANSIENT", "TRANSIENT", "UNKNOWN"]
    fatal = next(p for p in analysis.errors if p.kind == "FATAL")
    assert fatal.escaped
