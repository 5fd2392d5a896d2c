"""Celery round trips over a real redis-server: plain vs tracectx vs OTel's CeleryInstrumentor.

Each variant gets its own solo worker process instrumented the same way as the caller; an op
is ``delay()`` + ``get()`` of a trivial task inside a caller span (in every variant: the SDK is
set up the same way, spans go to a batch processor and a discarding exporter).

The method is `bench.harness.interleave`'s, with processes: each round runs every variant once
(a fresh worker and caller process each, since instrumentations cannot be fully undone), in an
order rotated round by round (plain tracectx otel, tracectx otel plain, otel plain tracectx,
…); each variant's wall time per round trip is divided by plain's *in the same round*. The table
reports the median µs per round trip over rounds and the median [min-max] of those per-round
ratios. Alongside, deterministic counts the timing noise does not touch: redis commands and
bytes (in + out of redis-server, from its ``INFO``) per round trip.

    python -m bench.bench_celery [--tasks 1000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from opentelemetry import trace

from bench.celery_app import instrument, make_app
from bench.harness import Outcome, report, rows_of
from tracectx_demo.embedded import redis_server

MODES = ("plain", "tracectx", "otel")  # the first is the baseline
NAMES = {"plain": "plain", "tracectx": "tracectx", "otel": "otel-celery"}
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


def _redis_counts(client: Any) -> tuple[int, int]:
    """Commands served and bytes in + out of redis-server so far (the INFO call included)."""
    commands = sum(v["calls"] for v in client.info("commandstats").values())
    stats = client.info("stats")
    return commands, int(stats["total_net_input_bytes"]) + int(stats["total_net_output_bytes"])


def round_trips(broker: str, count: int) -> dict[str, float]:
    """µs per round trip, and redis commands and bytes per round trip (INFO calls excluded)."""
    import redis

    app = make_app(broker)
    echo = app.signature("b.echo")
    tracer = trace.get_tracer("bench")
    client = redis.Redis.from_url(broker)
    for i in range(20):  # warm-up: connections, result consumer
        echo.delay(i).get(timeout=10)
    commands_before, bytes_before = _redis_counts(client)
    start = time.perf_counter()
    for i in range(count):
        with tracer.start_as_current_span("request"):
            echo.delay(i).get(timeout=10)
    elapsed = time.perf_counter() - start
    commands_after, bytes_after = _redis_counts(client)
    return {
        "us": elapsed / count * 1e6,
        "commands": (commands_after - commands_before - 2) / count,
        "bytes": (bytes_after - bytes_before) / count,
    }


def one(broker: str, mode: str, count: int) -> dict[str, float]:
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
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def caller(broker: str, mode: str, count: int) -> str:
    """One variant's caller: its round trips measured, as a JSON line."""
    instrument(mode)
    return json.dumps(round_trips(broker, count))


def rotated(modes: tuple[str, ...], round_index: int) -> list[str]:
    """`modes` rotated by `round_index`: A B C, B C A, C A B, …"""
    k = round_index % len(modes)
    return [*modes[k:], *modes[:k]]


def outcomes(samples: dict[str, list[float]], baseline: str) -> list[Outcome]:
    """Per-variant medians and per-round ratios to `baseline` (rounds aligned by index)."""
    base = samples[baseline]
    out = []
    for mode, mine in samples.items():
        ratios = [m / b for m, b in zip(mine, base, strict=True)]
        out.append(
            Outcome(
                variant=NAMES[mode],
                us_per_op=statistics.median(mine),
                ratio=statistics.median(ratios),
                ratio_min=min(ratios),
                ratio_max=max(ratios),
                rounds=len(ratios),
            )
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    results: dict[str, list[dict[str, float]]] = {mode: [] for mode in MODES}
    with redis_server() as redis:
        broker = f"redis://{redis.address}/0"
        for r in range(args.rounds):
            for mode in rotated(MODES, r):
                results[mode].append(one(broker, mode, args.tasks))
    samples = {mode: [s["us"] for s in runs] for mode, runs in results.items()}
    rows = rows_of("round trip (µs/task)", outcomes(samples, "plain"), clock="wall")
    for row, mode in zip(rows, MODES, strict=True):
        row["redis_commands_per_task"] = round(
            statistics.median(s["commands"] for s in results[mode]), 2
        )
        row["redis_bytes_per_task"] = round(statistics.median(s["bytes"] for s in results[mode]), 1)
    report("celery", rows, baseline="plain")
    print(f"\n{'variant':<26}{'redis commands/task':>20}{'redis bytes/task':>18}")
    for row in rows:
        print(
            f"{row['variant']:<26}{row['redis_commands_per_task']:>20.2f}"
            f"{row['redis_bytes_per_task']:>18.1f}"
        )
    print(
        f"\n{args.tasks} tasks x {args.rounds} rounds (order rotated per round), solo worker, "
        "redis broker+backend"
    )


if __name__ == "__main__":
    main()
