"""Visualiser cost: N generated spans (~10% in error) in OTLP JSON, parsed and analysed.

Reports parse+model time next to plain orjson parsing of the same bytes, analysis time, peak
memory (tracemalloc) vs input size, and growth from N/10 to N. Also renders one large trace to
HTML. ``python -m bench.bench_viz [N]`` (default 1,000,000). ``--scaling`` instead counts the
Python function calls (cProfile, not time: the cores are shared) of the Jaeger deep link,
Mermaid and the terminal tree on 8k and 16k failing siblings: linear code doubles them.
"""

from __future__ import annotations

import cProfile
import io
import pstats
import random
import sys
import time
import tracemalloc

import orjson

from bench.harness import report
from tracectx.viz import analyse, loads_spans
from tracectx.viz.model import Span
from tracectx.viz.renderers import jaeger_link, render_html, render_mermaid, render_terminal

SPANS_PER_TRACE = 50


def generate(n: int, seed: int = 7) -> bytes:
    rng = random.Random(seed)
    spans = []
    for i in range(n):
        t = i // SPANS_PER_TRACE
        k = i % SPANS_PER_TRACE
        span = {
            "traceId": f"{t + 1:032x}",
            "spanId": f"{i + 1:016x}",
            "parentSpanId": "" if k == 0 else f"{t * SPANS_PER_TRACE + (k - 1) // 2 + 1:016x}",
            "name": f"op-{k % 7}",
            "kind": 1,
            "startTimeUnixNano": str(1_000_000 * i),
            "endTimeUnixNano": str(1_000_000 * i + 500),
            "attributes": [{"key": "n", "value": {"intValue": str(k)}}],
            "status": {"code": 2 if rng.random() < 0.1 else 0},
        }
        spans.append(span)
    doc = {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "bench"}}]
                },
                "scopeSpans": [{"scope": {"name": "b"}, "spans": spans}],
            }
        ]
    }
    return orjson.dumps(doc)


def measure(n: int) -> dict[str, float]:
    data = generate(n)
    start = time.perf_counter()
    orjson.loads(data)
    plain = time.perf_counter() - start
    start = time.perf_counter()
    span_set = loads_spans(data)
    parsed = time.perf_counter() - start
    start = time.perf_counter()
    analyses = analyse(span_set)
    analysed = time.perf_counter() - start
    errors = sum(len(a.errors) for a in analyses)
    del span_set, analyses
    tracemalloc.start()  # a second, untimed pass: tracemalloc slows Python several times
    analyse(loads_spans(data))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return {
        "n": n,
        "input_mb": len(data) / 1e6,
        "orjson_s": plain,
        "parse_s": parsed,
        "analyse_s": analysed,
        "peak_mb": peak / 1e6,
        "error_paths": errors,
    }


def _calls(fn: object, *args: object) -> int:
    profile = cProfile.Profile()
    profile.runcall(fn, *args)  # type: ignore[arg-type]
    return pstats.Stats(profile).total_calls  # type: ignore[attr-defined,no-any-return]


def scaling() -> None:
    """Function calls of the renderers on n and 2n failing siblings (2.0x = linear)."""
    from rich.console import Console

    def siblings(n: int) -> list[object]:
        root = Span("a" * 32, "f" * 16, None, "fanout", "svc", 0, 10 * n, error=True)
        kids = [
            Span("a" * 32, f"{i + 1:016x}", root.span_id, f"t{i}", "svc", i, i + 1, error=True)
            for i in range(n)
        ]
        return analyse([root, *kids])  # type: ignore[return-value]

    small, big = siblings(8_000), siblings(16_000)
    cases = {
        "jaeger_link": lambda a: jaeger_link("http://j", a[0]),
        "render_mermaid": render_mermaid,
        "render_terminal": lambda a: render_terminal(a, Console(file=io.StringIO()), full=True),
    }
    for name, fn in cases.items():
        c_small, c_big = _calls(fn, small), _calls(fn, big)
        print(
            f"{name:16} 8k: {c_small:>10,} calls  16k: {c_big:>10,} calls  x{c_big / c_small:.2f}"
        )


def main() -> None:
    if "--scaling" in sys.argv:
        scaling()
        return
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    small, big = measure(n // 10), measure(n)
    rows = []
    for m in (small, big):
        case = f"{m['n']:,} spans"
        rows.append(
            {"case": case, "variant": "orjson.loads", "us_per_op": m["orjson_s"] * 1e6 / m["n"]}
        )
        rows.append(
            {"case": case, "variant": "tracectx parse", "us_per_op": m["parse_s"] * 1e6 / m["n"]}
        )
        rows.append(
            {
                "case": case,
                "variant": "tracectx analyse",
                "us_per_op": m["analyse_s"] * 1e6 / m["n"],
            }
        )
    out = report("viz", rows, baseline="orjson.loads")
    for m in (small, big):
        print(
            f"{m['n']:>9,} spans: input {m['input_mb']:.0f} MB, peak {m['peak_mb']:.0f} MB "
            f"({m['peak_mb'] / m['input_mb']:.1f}x input), analyse/parse {m['analyse_s'] / m['parse_s']:.2f}, "
            f"{m['error_paths']:,} error paths"
        )
    print(
        f"growth {small['n']:,} -> {big['n']:,}: parse x{big['parse_s'] / small['parse_s']:.1f}, "
        f"analyse x{big['analyse_s'] / small['analyse_s']:.1f} (linear = x10)"
    )
    one = loads_spans(generate(100_000).replace(b'"traceId":"', b'"traceId":"f', 0))
    for s in one.spans:
        s.trace_id = "f" * 32
    start = time.perf_counter()
    html = render_html(analyse(one))
    print(
        f"one 100,000-span trace -> HTML: {time.perf_counter() - start:.1f} s, {len(html) / 1e6:.0f} MB"
    )
    out["details"] = [small, big]


if __name__ == "__main__":
    main()
