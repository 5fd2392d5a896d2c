"""Propagation-check accuracy (not time): the hops that lost context, found from spans alone.

``python -m bench.bench_propagation [seconds] [seed]`` generates `seconds` (default 120) of
concurrent traffic at 10 requests per second per service with tests/viz/generator_broken.py,
30 % of the hops dropping their context (HTTP without propagation, Celery without the signals,
Kafka without headers, a raw ThreadPoolExecutor, run_in_executor without the hooks), and
prints per hop kind: the lost hops, the findings, precision and recall (a finding counts when
both the call and the root it names are the true ones), and the findings whose call was lost
but whose root was another. Then the same with thin instrumentation (`sparse`: servers with a
route only, Kafka without keys), and the findings on whole traffic and on the error
generator's traces (both must be none). Writes ``bench/results/propagation.json``.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from bench.harness import RESULTS, machine
from tests.viz.generator import generate
from tests.viz.generator_broken import generate_broken, score
from tracectx.viz.propagation_check import check_propagation


def _case(seconds: float, seed: int, sparse: bool) -> dict[str, Any]:
    run = generate_broken(seconds, seed, drop=0.3, rate=10, sparse=sparse)
    report = check_propagation(run.spans)
    rows = {}
    for hop, s in score(run, report.findings).items():
        rows[hop] = {
            "lost": s.dropped,
            "found": s.found,
            "right": s.right,
            "call_right_root_wrong": s.call_right - s.right,
            "precision": round(s.precision, 4),
            "recall": round(s.recall, 4),
        }
    return {"spans": len(run.spans), "hops": rows}


def measure(seconds: float = 120.0, seed: int = 7) -> dict[str, Any]:
    """Precision and recall per hop kind (full and sparse attributes), the findings on whole
    traffic and on the error generator's traces; printed, and written to propagation.json."""
    out: dict[str, Any] = {"seconds": seconds, "seed": seed, "rate": 10, "drop": 0.3}
    out["machine"] = machine()
    for name, sparse in (("full attributes", False), ("sparse attributes", True)):
        case = _case(seconds, seed, sparse)
        out[name] = case
        print(f"{name} ({case['spans']:,} spans, {seconds:g} s at 10 req/s)")
        for hop, r in case["hops"].items():
            print(
                f"  {hop:7} lost {r['lost']:5}  found {r['found']:5}  precision "
                f"{r['precision']:6.1%}  recall {r['recall']:6.1%}  "
                f"(call right, root wrong: {r['call_right_root_wrong']})"
            )
    whole = generate_broken(seconds, seed, drop=0.0, rate=10)
    errors = [s for t in generate(1000, seed, "plain") for s in t.spans]
    out["findings_on_whole_traffic"] = len(check_propagation(whole.spans).findings)
    out["findings_on_error_generator_traces"] = len(check_propagation(errors).findings)
    print(f"findings on whole traffic: {out['findings_on_whole_traffic']}")
    print(f"findings on 1,000 error-generator traces: {out['findings_on_error_generator_traces']}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "propagation.json").write_text(json.dumps(out, indent=2) + "\n")
    return out


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 120.0
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 7
    measure(seconds, seed)


if __name__ == "__main__":
    main()
