"""Run every benchmark, one after the other, and print one table of ratios.

    python -m bench.run_all            # full sizes (several minutes)
    python -m bench.run_all --quick    # smaller sizes, same shape

Each benchmark writes ``bench/results/<name>.json``; this writes ``bench/results/summary.json``
and ``bench/results/summary.md`` (the table docs/benchmarks.md shows).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from bench.harness import RESULTS, machine

ROOT = Path(__file__).resolve().parents[1]
BENCHES: dict[str, tuple[list[str], list[str]]] = {  # module: (full args, quick args)
    "hops": (["--rounds", "30"], ["--ops", "1000", "--rounds", "6"]),
    "unwind": (["--rounds", "30"], ["--rounds", "6"]),
    "alerting": (["--rounds", "20"], ["--rounds", "4", "--keys", "100000"]),
    "stream": (["--rounds", "15"], ["--records", "50", "--rounds", "4"]),
    "celery": (["--tasks", "1000", "--rounds", "5"], ["--tasks", "200", "--rounds", "1"]),
    "kafka": (["--messages", "5000", "--rounds", "10"], ["--messages", "1000", "--rounds", "3"]),
    "viz": (["1000000"], ["100000"]),
}


def _spread(row: dict[str, object]) -> str:
    low, high = row.get("ratio_min"), row.get("ratio_max")
    return f"{low:.2f}–{high:.2f}" if isinstance(low, float) and isinstance(high, float) else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes")
    parser.add_argument("--summary", action="store_true", help="only rebuild the summary")
    parser.add_argument("only", nargs="*", help=f"a subset of {', '.join(BENCHES)}")
    args = parser.parse_args()
    failed = []
    for name, (full, quick) in BENCHES.items():
        if args.summary or (args.only and name not in args.only):
            continue
        print(f"\n=== bench_{name}", flush=True)
        argv = [sys.executable, "-m", f"bench.bench_{name}", *(quick if args.quick else full)]
        if subprocess.run(argv, cwd=ROOT).returncode != 0:
            failed.append(name)
    rows = []
    for path in sorted(RESULTS.glob("*.json")):
        if path.stem == "summary":
            continue
        data = json.loads(path.read_text())
        for row in data.get("rows", []):
            rows.append({"benchmark": data["benchmark"], **row})
    lines = [
        "| benchmark | case | variant | µs/op | ratio (median) | per-round range |",
        "|---|---|---|---:|---:|---:|",
        *(
            f"| {r['benchmark']} | {r['case']} | {r['variant']} | {r['us_per_op']:.2f} | "
            f"{'' if r.get('ratio') is None else format(r['ratio'], '.2f') + '×'} | "
            f"{_spread(r)} |"
            for r in rows
        ),
    ]
    table = "\n".join(lines)
    print("\n" + table)
    info = machine()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "summary.json").write_text(json.dumps({"machine": info, "rows": rows}, indent=2))
    (RESULTS / "summary.md").write_text(
        f"{table}\n\nPython {info['python']}, {info['cpu']}, {info['cores']} cores\n"
    )
    if failed:
        sys.exit(f"benchmarks failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
