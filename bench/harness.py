"""Shared benchmark plumbing: interleaved variants, per-round ratios, JSON with machine info.

Benchmarks are scripts, not tests: ``python -m bench.bench_hops`` prints a table and writes
``bench/results/<name>.json``.

The method (`interleave`): these machines are 2 noisy cores, where running variant A for a
while and then variant B misreports by up to 30 %. So each round runs every variant once, in an
order rotated round by round (A B C, B C A, C A B, …), and each variant's time is divided by the
baseline's time *in the same round*: the noise a round suffers hits both sides of its ratio.
The table reports the median of the per-round ratios and their min-max over many rounds. In-process
work is timed with the process CPU clock (all threads of the process, so pool workers count;
time spent waiting for the other core's tenants does not); work involving a broker or a worker
process uses wall time.

Where the difference is below what wall time resolves on these cores, `instructions_per_op`
counts it instead: the benchmark's ``--count VARIANT`` mode runs that one variant's ``run(n)``
(nothing else timed), under ``valgrind --tool=callgrind`` for n and 2n ops; the difference of
the two totals (all threads, so pool workers count) over n is the cost per op, start-up
cancelled out. `count_main` is that mode's entry point.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
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


@dataclasses.dataclass(frozen=True)
class Variant:
    """One side of a comparison: `run(n)` does n ops; `setup`/`teardown` run untimed around it
    each round (e.g. instrument/uninstrument a library)."""

    name: str
    run: Callable[[int], object]
    setup: Callable[[], object] | None = None
    teardown: Callable[[], object] | None = None


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What `interleave` measured for one variant."""

    variant: str
    us_per_op: float  # median over rounds
    ratio: float  # median of per-round ratios to the baseline
    ratio_min: float
    ratio_max: float
    rounds: int


CLOCKS: dict[str, Callable[[], int]] = {
    "cpu": time.process_time_ns,
    "wall": time.perf_counter_ns,
}


def interleave(
    variants: list[Variant],
    ops: int,
    *,
    rounds: int = 30,
    clock: str = "cpu",
    warmup_rounds: int = 2,
) -> list[Outcome]:
    """Run `variants` interleaved in rotating order; the first one is the baseline."""
    tick = CLOCKS[clock]
    times: dict[str, list[int]] = {v.name: [] for v in variants}
    for r in range(warmup_rounds + rounds):
        k = r % len(variants)
        for variant in variants[k:] + variants[:k]:
            if variant.setup is not None:
                variant.setup()
            try:
                start = tick()
                variant.run(ops)
                elapsed = tick() - start
            finally:
                if variant.teardown is not None:
                    variant.teardown()
            if r >= warmup_rounds:
                times[variant.name].append(max(elapsed, 1))
    base = times[variants[0].name]
    out = []
    for variant in variants:
        mine = times[variant.name]
        ratios = [m / b for m, b in zip(mine, base, strict=True)]
        out.append(
            Outcome(
                variant=variant.name,
                us_per_op=statistics.median(mine) / ops / 1e3,
                ratio=statistics.median(ratios),
                ratio_min=min(ratios),
                ratio_max=max(ratios),
                rounds=len(ratios),
            )
        )
    return out


def rows_of(case: str, outcomes: list[Outcome], clock: str = "cpu") -> list[dict[str, Any]]:
    """`interleave` results as `report` rows."""
    return [
        {
            "case": case,
            "variant": o.variant,
            "us_per_op": round(o.us_per_op, 3),
            "ratio": round(o.ratio, 3),
            "ratio_min": round(o.ratio_min, 3),
            "ratio_max": round(o.ratio_max, 3),
            "rounds": o.rounds,
            "clock": clock,
        }
        for o in outcomes
    ]


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
    """Print `rows` ({"case", "variant", "us_per_op"}, plus "ratio"/"ratio_min"/"ratio_max"
    when measured by `interleave`) with ratios to `baseline`; write JSON."""
    base = {r["case"]: r["us_per_op"] for r in rows if r["variant"] == baseline}
    print(f"\n{name}  (median µs/op; ratio = variant / {baseline}, median [min-max] per round)")
    print(f"{'case':<28}{'variant':<38}{'µs/op':>10}{'ratio':>8}  range")
    for row in rows:
        ref = base.get(row["case"])
        if "ratio" not in row:
            row["ratio"] = round(row["us_per_op"] / ref, 3) if ref else None
        ratio = f"{row['ratio']:.2f}x" if row["ratio"] is not None else "-"
        spread = f"  {row['ratio_min']:.2f}-{row['ratio_max']:.2f}" if "ratio_min" in row else ""
        print(f"{row['case']:<28}{row['variant']:<38}{row['us_per_op']:>10.2f}{ratio:>8}{spread}")
    out = {"benchmark": name, "baseline": baseline, "machine": machine(), "rows": rows}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(out, indent=2))
    return out


VALGRIND = "/usr/bin/valgrind"


def instructions(argv: list[str]) -> int:
    """Total instructions (all threads) of ``python <argv>`` under callgrind."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "cg.out")
        subprocess.run(
            [VALGRIND, "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, *argv],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        text = Path(out).read_text()
    found = re.search(r"^(?:summary|totals): (\d+)", text, re.M)
    if found is None:
        raise RuntimeError("no total in the callgrind output")
    return int(found.group(1))


def instructions_per_op(module: str, variant: str, ops: int, extra: Sequence[str] = ()) -> float:
    """Instructions per op of `module`'s ``--count variant``: (count(2n) - count(n)) / n."""
    base = ["-m", module, "--count", variant, *extra]
    low = instructions([*base, "--ops", str(ops)])
    high = instructions([*base, "--ops", str(2 * ops)])
    return (high - low) / ops


def count_table(module: str, cases: dict[str, list[str]], ops: int, baseline: str) -> None:
    """Print instructions per op for each case's variants (the first is `baseline`'s case
    ratio base), counted one callgrind run pair at a time."""
    print(f"\n{module}: callgrind instructions per op (ratio to {baseline})")
    for case, variants in cases.items():
        base: float | None = None
        for variant in variants:
            cost = instructions_per_op(module, variant, ops, ["--case", case])
            if variant == baseline:
                base = cost
            ratio = f"{cost / base:6.3f}x" if base else ""
            print(f"{case:<28}{variant:<30}{cost:>12,.0f} {ratio}", flush=True)
