"""Shared benchmark plumbing: warm-up, repeats, median per op, ratio table, JSON with machine info.

Benchmarks are scripts, not tests: ``python bench/bench_hops.py`` prints a table and writes
``bench/results/<name>.json``.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"


def per_op(run: Callable[[int], None], ops: int, repeats: int = 7, warmup: int = 1) -> float:
    """Median seconds per op of `run(ops)` over `repeats` timed runs."""
    for _ in range(warmup):
        run(max(ops // 10, 1))
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        run(ops)
        samples.append((time.perf_counter() - start) / ops)
    return statistics.median(samples)


def machine() -> dict[str, Any]:
    versions = {}
    for dist in ("tracectx", "opentelemetry-sdk", "celery", "kafka-python", "orjson"):
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            pass
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "python": platform.python_version(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "versions": versions,
    }


def report(name: str, rows: list[dict[str, Any]], baseline: str) -> dict[str, Any]:
    """Print `rows` ({"case", "variant", "us_per_op"}) with ratios to `baseline`; write JSON."""
    base = {r["case"]: r["us_per_op"] for r in rows if r["variant"] == baseline}
    print(f"\n{name}  (median µs/op; ratio = variant / {baseline})")
    print(f"{'case':<28}{'variant':<26}{'µs/op':>10}{'ratio':>8}")
    for row in rows:
        ref = base.get(row["case"])
        row["ratio"] = round(row["us_per_op"] / ref, 3) if ref else None
        ratio = f"{row['ratio']:.2f}x" if row["ratio"] is not None else "-"
        print(f"{row['case']:<28}{row['variant']:<26}{row['us_per_op']:>10.2f}{ratio:>8}")
    out = {"benchmark": name, "baseline": baseline, "machine": machine(), "rows": rows}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(out, indent=2))
    return out
