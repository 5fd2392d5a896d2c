"""Analysis accuracy (not time) on generated traces with known origins.

``python -m bench.bench_accuracy [traces] [seed]`` generates `traces` traces (default 3,000) in
both variants of tests/viz/generator.py — plain OTel (status and ``exception`` events only) and
tracectx (error ids) — runs the visualiser's analysis on each, and prints, next to the standard
rule (deepest errored span is the origin, errored ancestors propagate, the first non-error
ancestor absorbs), the share of true origins found (over true and reported origins together)
and of errors whose outcome — absorber, escaped or unobserved — is right, overall and per
scenario, and apart for the errors touching spans of each category of the generator (spans named
like tasks or threads, HTTP servers that answered 4xx; a made-up origin among those spans counts
against the category's origin figure). Writes ``bench/results/accuracy.json``.
"""

from __future__ import annotations

import json
import sys
from types import SimpleNamespace
from typing import Any

from bench.harness import RESULTS, machine
from tests.viz.generator import CATEGORIES, Scores, Variant, generate
from tracectx.viz import analyse
from tracectx.viz.model import Span


def standard_rule(spans: list[Span]) -> list[Any]:
    """The textbook rule, for comparison: the origin is the deepest errored span with no errored
    child, errored ancestors propagate, the first non-error ancestor absorbs (else escaped)."""
    by_id = {s.span_id: s for s in spans}
    parent = {s.span_id: s.parent_id for s in spans if s.parent_id in by_id}
    has_errored_child = {parent[s.span_id] for s in spans if s.error and s.span_id in parent}
    paths = []
    for s in spans:
        if not s.error or s.span_id in has_errored_child:
            continue
        node = s.span_id
        while parent.get(node) in by_id and by_id[parent[node]].error:
            node = parent[node]
        up = parent.get(node)
        paths.append(
            SimpleNamespace(
                origin=s.span_id,
                absorber=up,
                outcome="absorbed" if up else "escaped",
            )
        )
    return paths


def run(n: int, seed: int, variant: Variant) -> dict[str, Scores]:
    scores = {"tracectx analyse": Scores(), "standard rule": Scores()}
    for trace in generate(n, seed, variant):
        [analysis] = analyse(trace.spans)
        scores["tracectx analyse"].add(trace, analysis.errors)
        scores["standard rule"].add(trace, standard_rule(trace.spans))
    return scores


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 7
    out: dict[str, Any] = {"traces": n, "seed": seed, "machine": machine(), "results": []}
    for variant in ("plain", "tracectx"):
        for method, s in run(n, seed, variant).items():
            scenarios: dict[str, dict[str, Any]] = {}
            for name, (count, origins, outcomes) in sorted(s.by_scenario.items()):
                scenarios[name] = {
                    "errors": count,
                    "origin": round(origins / count, 4),
                    "outcome": round(outcomes / count, 4),
                }
            categories: dict[str, dict[str, Any]] = {}
            for name in CATEGORIES:
                origin, outcome = s.category(name)
                count, _, _, made_up = s.by_category[name]
                categories[name] = {
                    "errors": count,
                    "made_up_origins": made_up,
                    "origin": round(origin, 4),
                    "outcome": round(outcome, 4),
                }
            out["results"].append(
                {
                    "variant": variant,
                    "method": method,
                    "errors": s.errors,
                    "reported": s.reported,
                    "origin": round(s.origin, 4),
                    "absorber": round(s.absorber, 4),
                    "scenarios": scenarios,
                    "categories": categories,
                }
            )
            print(
                f"{variant:9} {method:17} origin {s.origin:6.1%}  absorber/outcome "
                f"{s.absorber:6.1%}  ({s.errors} errors, {s.reported} paths reported)"
            )
            for name, row in scenarios.items():
                print(
                    f"{'':28}{name:17} n={row['errors']:5}  origin {row['origin']:6.1%}  "
                    f"outcome {row['outcome']:6.1%}"
                )
            for name, row in categories.items():
                print(
                    f"{'':28}[{name}] n={row['errors']:5}  origin {row['origin']:6.1%}  "
                    f"outcome {row['outcome']:6.1%}  made-up origins {row['made_up_origins']}"
                )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "accuracy.json").write_text(json.dumps(out, indent=2) + "\n")
    # where traces broke: the propagation check's precision and recall per hop kind, on the
    # broken-hop generator's traffic (tests/viz/generator_broken.py)
    from bench.bench_propagation import measure

    print("\npropagation check (lost context), per hop kind:")
    measure(seed=seed)


if __name__ == "__main__":
    main()
