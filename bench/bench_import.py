"""What ``import tracectx`` costs, next to ``import opentelemetry.sdk.trace`` (target: <= 1.2x).

``python -m bench.bench_import [mode ...]`` with modes:

- ``importtime`` (default): ``python -X importtime`` per target, several runs; the median of the
  summed self times of every module imported (the interpreter's own start-up excluded), and the
  heaviest third-party packages each target pulls beyond the baseline.
- ``callgrind``: instructions executed by ``python -c "import X"`` under
  ``valgrind --tool=callgrind`` (deterministic: no noise from the other tenants of the cores);
  ``python -c pass`` is measured too, and the table shows whole-process and import-only ratios.
- ``wall``: whole-process wall time of ``python -c "import X"``, targets interleaved round by
  round in rotating order (`bench.harness.interleave`), median of per-round ratios. Timing on a
  shared machine is noisy: run it on a quiet one.

Targets: the baseline ``opentelemetry.sdk.trace``; ``tracectx`` (bare import); ``tracectx
core use`` (import, then a traced span recording an error with bound metadata: what the first
request of a service loads); ``tracectx.setup`` (the setup module, its SDK and exporters).
Writes ``bench/results/import.json`` (one section per mode run; the wall figures also as the
``rows`` that ``python -m bench.run_all --summary`` puts in the summary table).
"""

from __future__ import annotations

import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from bench.harness import RESULTS, Variant, interleave, machine

BASELINE = "opentelemetry.sdk.trace"
TARGETS: dict[str, str] = {
    BASELINE: "import opentelemetry.sdk.trace",
    "tracectx": "import tracectx",
    "tracectx core use": (
        "import tracectx\n"
        "with tracectx.traced('op'):\n"
        "    tracectx.bind(account_id='a')\n"
        "    tracectx.record_error(tracectx.new_error(tracectx.ErrorKind.BUSINESS, 'x'))"
    ),
    "tracectx.setup": "import tracectx.bootstrap",
}
_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")


def _importtime(code: str) -> dict[str, int]:
    """Module -> self µs, from one ``-X importtime`` run."""
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        capture_output=True,
        text=True,
        check=True,
    )
    return {m.group(4): int(m.group(1)) for m in map(_LINE.match, out.stderr.splitlines()) if m}


def importtime(runs: int = 9) -> dict[str, Any]:
    """Median summed self time per target, and what each pulls beyond the baseline."""
    startup = set(_importtime("pass"))  # the interpreter's own start-up (site, encodings, …)
    result: dict[str, Any] = {}
    per_target: dict[str, dict[str, int]] = {}
    for name, code in TARGETS.items():
        totals = []
        for _ in range(runs):
            modules = _importtime(code)
            per_target[name] = modules
            totals.append(sum(us for m, us in modules.items() if m not in startup))
        result[name] = {"ms": round(statistics.median(totals) / 1000, 2)}
    base = per_target[BASELINE]
    for name, modules in per_target.items():
        extra: Counter[str] = Counter()
        for module, us in modules.items():
            if module not in base and module not in startup:
                extra[module.split(".")[0]] += us
        result[name]["modules"] = len([m for m in modules if m not in startup])
        result[name]["beyond_baseline_ms"] = {
            k: round(v / 1000, 2) for k, v in extra.most_common(8)
        }
        result[name]["ratio"] = round(result[name]["ms"] / result[BASELINE]["ms"], 2)
    print("\nimport, -X importtime (median summed self time, interpreter start-up excluded)")
    print(f"{'target':<22}{'ms':>8}{'ratio':>8}{'modules':>9}  heaviest beyond the baseline (ms)")
    for name, row in result.items():
        heavy = ", ".join(f"{k} {v}" for k, v in list(row["beyond_baseline_ms"].items())[:5])
        print(f"{name:<22}{row['ms']:>8.1f}{row['ratio']:>7.2f}x{row['modules']:>9}  {heavy}")
    return result


def _instructions(code: str) -> int:
    """Instructions executed by ``python -c code``, counted by callgrind."""
    with tempfile.TemporaryDirectory() as tmp:
        out_file = Path(tmp) / "callgrind.out"
        subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={out_file}",
                sys.executable,
                "-c",
                code,
            ],
            capture_output=True,
            check=True,
        )
        for line in out_file.read_text().splitlines():
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
    raise RuntimeError("callgrind wrote no summary")


def callgrind() -> dict[str, Any]:
    """Instruction counts: whole process, and with ``python -c pass`` taken off."""
    if shutil.which("valgrind") is None:
        raise SystemExit("callgrind mode needs valgrind (apt-get install valgrind)")
    empty = _instructions("pass")
    counts = {name: _instructions(code) for name, code in TARGETS.items()}
    base = counts[BASELINE]
    result = {
        name: {
            "instructions": n,
            "import_only": n - empty,
            "ratio_process": round(n / base, 3),
            "ratio_import_only": round((n - empty) / (base - empty), 3),
        }
        for name, n in counts.items()
    }
    result["python -c pass"] = {"instructions": empty}
    print("\nimport, instructions (valgrind --tool=callgrind)")
    print(f"{'target':<22}{'Minstr':>9}{'import-only':>13}{'ratio':>8}{'import-only ratio':>19}")
    for name, row in result.items():
        if "ratio_process" not in row:
            print(f"{name:<22}{row['instructions'] / 1e6:>9.1f}")
            continue
        print(
            f"{name:<22}{row['instructions'] / 1e6:>9.1f}{row['import_only'] / 1e6:>13.1f}"
            f"{row['ratio_process']:>7.2f}x{row['ratio_import_only']:>18.2f}x"
        )
    return result


def wall(rounds: int = 40) -> dict[str, Any]:
    """Whole-process wall time per target, interleaved (the figure the issue quotes)."""

    def runner(code: str) -> Any:
        def run(n: int) -> None:
            for _ in range(n):
                subprocess.run([sys.executable, "-c", code], check=True)

        return run

    variants = [Variant(name, runner(code)) for name, code in TARGETS.items()]
    outcomes = interleave(variants, 1, rounds=rounds, clock="wall")
    result = {
        o.variant: {
            "ms": round(o.us_per_op / 1000, 1),
            "ratio": round(o.ratio, 3),
            "ratio_min": round(o.ratio_min, 3),
            "ratio_max": round(o.ratio_max, 3),
            "rounds": o.rounds,
        }
        for o in outcomes
    }
    print(f"\nimport, whole-process wall time, interleaved ({rounds} rounds)")
    print(f"{'target':<22}{'ms':>8}{'ratio':>8}  range")
    for name, row in result.items():
        print(
            f"{name:<22}{row['ms']:>8.1f}{row['ratio']:>7.2f}x  "
            f"{row['ratio_min']:.2f}-{row['ratio_max']:.2f}"
        )
    return result


MODES = {"importtime": importtime, "callgrind": callgrind, "wall": wall}


def main(argv: list[str]) -> None:
    modes = argv or ["importtime"]
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        raise SystemExit(f"unknown modes {unknown}; choose from {list(MODES)}")
    path = RESULTS / "import.json"
    out: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    out.update({"benchmark": "import", "baseline": BASELINE, "machine": machine()})
    for mode in modes:
        out[mode] = MODES[mode]()
    if "wall" in out:  # the rows bench.run_all puts in the summary table
        out["rows"] = [
            {
                "case": "import (whole process, wall)",
                "variant": name,
                "us_per_op": row["ms"] * 1000,
                "ratio": row["ratio"],
                "ratio_min": row["ratio_min"],
                "ratio_max": row["ratio_max"],
                "rounds": row["rounds"],
                "clock": "wall",
            }
            for name, row in out["wall"].items()
        ]
    RESULTS.mkdir(exist_ok=True)
    path.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])
