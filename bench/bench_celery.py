"""Celery round trips over a real redis-server: plain vs tracectx vs OTel's CeleryInstrumentor.

Each variant gets its own solo worker process instrumented the same way as the caller; an op
is ``delay()`` + ``get()`` of a trivial task inside a caller span. Variants are interleaved
over rounds; the median µs per round trip is reported.

    python -m bench.bench_celery [--tasks 1000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from opentelemetry import trace

from bench.celery_app import instrument, make_app
from bench.harness import report
from tracectx_demo.embedded import redis_server

MODES = ("plain", "tracectx", "otel")
ROOT = Path(__file__).resolve().parents[1]


def start_worker(broker: str, mode: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "BENCH_BROKER": broker, "BENCH_MODE": mode}
    argv = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "bench.celery_app",
        "worker",
        "-P",
        "solo",
        "-l",
        "warning",
        "--without-mingle",
        "--without-gossip",
        "--without-heartbeat",
        "-n",
        f"bench-{mode}@localhost",
    ]
    proc = subprocess.Popen(
        argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    app = make_app(broker)
    for _ in range(120):
        if app.control.ping(timeout=0.5):
            return proc
    proc.kill()
    raise RuntimeError(f"{mode} worker did not start")


def round_trips(broker: str, count: int) -> float:
    app = make_app(broker)
    echo = app.signature("b.echo")
    tracer = trace.get_tracer("bench")
    for i in range(20):  # warm-up: connections, result consumer
        echo.delay(i).get(timeout=10)
    start = time.perf_counter()
    for i in range(count):
        with tracer.start_as_current_span("request"):
            echo.delay(i).get(timeout=10)
    return (time.perf_counter() - start) / count * 1e6


def one(broker: str, mode: str, count: int) -> float:
    """One variant in a fresh caller process (instrumentations cannot be fully undone)."""
    code = (
        "import sys; from bench.bench_celery import caller; "
        f"print(caller({broker!r}, {mode!r}, {count}))"
    )
    worker = start_worker(broker, mode)
    try:
        out = subprocess.run(
            [sys.executable, "-c", code],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
            timeout=600,
        )
    finally:
        worker.terminate()
        worker.wait(30)
    return float(out.stdout.strip().splitlines()[-1])


def caller(broker: str, mode: str, count: int) -> float:
    instrument(mode)
    return round_trips(broker, count)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    samples: dict[str, list[float]] = {mode: [] for mode in MODES}
    with redis_server() as redis:
        broker = f"redis://{redis.address}/0"
        for _ in range(args.rounds):
            for mode in MODES:
                samples[mode].append(one(broker, mode, args.tasks))
    names = {"plain": "plain", "tracectx": "tracectx", "otel": "otel-celery"}
    rows = [
        {"case": "round trip (µs/task)", "variant": names[m], "us_per_op": statistics.median(v)}
        for m, v in samples.items()
    ]
    report("celery", rows, baseline="plain")
    print(f"\n{args.tasks} tasks x {args.rounds} rounds, solo worker, redis broker+backend")


if __name__ == "__main__":
    main()
