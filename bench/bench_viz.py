"""Visualiser cost on an OTel Collector-style export, side by side with plain orjson on the same file.

For each size (``python -m bench.bench_viz [N]``: N/100, N/10 and N spans, default N = 1,000,000;
or ``--sizes 10000,100000``) one file is generated as the Collector's file exporter writes it:
OTLP JSON lines, 512 spans per line in the order spans end (so traces are interleaved across
lines), spans grouped by service into ``resourceSpans`` with several resource attributes, about
500 bytes a span (HTTP/DB attributes), 100 spans a trace, 10 % of traces failing (an exception
event at the failing leaf, ERROR status up through some of its ancestors).

Then, each in its own fresh process, on the same file:

- ``orjson.loads`` of every line, the parsed documents kept (what a reader that analyses the
  whole file has to hold): the baseline;
- ``tracectx graph FILE --format json -o OUT``: read, analyse and write, the whole command.

For each: wall and CPU time (``os.wait4`` of that child) and peak RSS (the child's own VmHWM),
minus the peak of an interpreter that only did the same imports. The table gives tracectx/orjson ratios per
size and the growth of per-span cost from the smallest to the largest size (1.0 = linear).
``--scaling`` instead counts the Python function calls (cProfile, not time: the cores are
shared) of the Jaeger deep link, Mermaid and the terminal tree on 8k and 16k failing siblings:
linear code doubles them.
"""

from __future__ import annotations

import argparse
import cProfile
import heapq
import io
import itertools
import os
import pstats
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import orjson

from bench.harness import report
from tracectx.viz import analyse
from tracectx.viz.model import Span
from tracectx.viz.renderers import jaeger_link, render_mermaid, render_terminal

SPANS_PER_TRACE = 100
BATCH = 512
FAILING_TRACES = 0.10
ROOT = Path(__file__).resolve().parents[1]
SERVICES = ["frontend", "checkout", "payments", "inventory", "shipping", "orders"]
_BASE_NS = 1_700_000_000_000_000_000


def _resource(service: str) -> dict[str, Any]:
    attrs = {
        "service.name": service,
        "service.version": "2.14.3",
        "service.namespace": "shop",
        "deployment.environment": "production",
        "host.name": f"{service}-7d9f8b6c5-x2k4q",
        "telemetry.sdk.name": "opentelemetry",
        "telemetry.sdk.language": "python",
        "telemetry.sdk.version": "1.27.0",
    }
    return {"attributes": [{"key": k, "value": {"stringValue": v}} for k, v in attrs.items()]}


def _kv(key: str, value: str | int) -> dict[str, Any]:
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    return {"key": key, "value": {"stringValue": value}}


def _trace(rng: random.Random, start: int, per_trace: int) -> list[tuple[int, str, dict[str, Any]]]:
    """One trace's spans as (end time, service, OTLP span), parents before children."""
    trace_id = f"{rng.getrandbits(128):032x}"
    spans: list[dict[str, Any]] = []
    parents: list[int] = []
    ends: list[int] = []
    services: list[str] = []
    for k in range(per_trace):
        parent = -1 if k == 0 else rng.randrange(max(k - 8, 0), k)
        p_start = start if parent < 0 else int(spans[parent]["startTimeUnixNano"])
        p_end = start + 400_000_000 if parent < 0 else ends[parent]
        s = p_start + (p_end - p_start) // 10 + rng.randrange(1000)
        e = s + max((p_end - s) // 2, 1000)
        service = SERVICES[0] if parent < 0 else rng.choice(SERVICES)
        order = rng.randrange(100_000)
        attributes = [
            _kv("http.request.method", rng.choice(["GET", "POST", "PUT"])),
            _kv("url.full", f"https://shop.example.com/api/{service}/{order}"),
            _kv("http.response.status_code", 200),
            _kv("server.address", f"{service}:8080"),
        ]
        spans.append(
            {
                "traceId": trace_id,
                "spanId": f"{rng.getrandbits(64) | 1:016x}",
                "parentSpanId": "" if parent < 0 else spans[parent]["spanId"],
                "name": f"{attributes[0]['value']['stringValue']} /api/{service}/{{id}}",
                "kind": 2 if k % 2 == 0 else 3,
                "startTimeUnixNano": str(s),
                "endTimeUnixNano": str(e),
                "attributes": attributes,
                "status": {},
            }
        )
        parents.append(parent)
        ends.append(e)
        services.append(service)
    if rng.random() < FAILING_TRACES:
        leaf = rng.randrange(per_trace // 2, per_trace)
        spans[leaf]["events"] = [
            {
                "timeUnixNano": spans[leaf]["endTimeUnixNano"],
                "name": "exception",
                "attributes": [
                    _kv("exception.type", "ConnectionError"),
                    _kv("exception.message", f"upstream {services[leaf]} refused the connection"),
                    _kv(
                        "exception.stacktrace",
                        'Traceback (most recent call last):\n  File "app.py", line 42, in call\n'
                        "    return session.get(url)\nConnectionError: refused",
                    ),
                ],
            }
        ]
        node = leaf
        for _ in range(rng.randrange(1, 5)):  # the error climbs a few ancestors
            spans[node]["status"] = {"code": 2, "message": "ConnectionError: refused"}
            spans[node]["attributes"][2] = _kv("http.response.status_code", 503)
            node = parents[node]
            if node < 0:
                break
    return [(ends[k], services[k], spans[k]) for k in range(per_trace)]


def _ended(n: int, seed: int, per_trace: int) -> Iterator[tuple[str, dict[str, Any]]]:
    """`n` spans as they end: a new trace every 40 ms, each lasting up to 400 ms."""
    rng = random.Random(seed)
    heap: list[tuple[int, int, str, dict[str, Any]]] = []
    tie = 0
    for number in range(max(n // per_trace, 1)):
        start = _BASE_NS + number * 40_000_000
        while heap and heap[0][0] < start:  # no later trace ends a span this early
            _, _, service, span = heapq.heappop(heap)
            yield service, span
        for end, service, span in _trace(rng, start, per_trace):
            heapq.heappush(heap, (end, tie, service, span))
            tie += 1
    while heap:
        _, _, service, span = heapq.heappop(heap)
        yield service, span


def generate(n: int, seed: int = 7, per_trace: int = 50) -> bytes:
    """The export of `n` spans (JSON lines) in memory, for tests that need a big input
    (`per_trace` 50 by default, the shape tests/viz/test_jaeger_cli.py counts on)."""
    out = io.BytesIO()
    _write_export(out, n, seed, per_trace)
    return out.getvalue()


def write_export(path: Path, n: int, seed: int = 7) -> int:
    """Write the export of `n` spans to `path` (JSON lines); its size in bytes."""
    with path.open("wb") as f:
        _write_export(f, n, seed, SPANS_PER_TRACE)
    return path.stat().st_size


def _write_export(f: IO[bytes], n: int, seed: int, per_trace: int) -> None:
    """JSON lines of `BATCH` spans each, spans grouped by service within a line."""
    resources = {s: _resource(s) for s in SERVICES}
    batch: dict[str, list[dict[str, Any]]] = {}

    def flush() -> None:
        doc = {
            "resourceSpans": [
                {
                    "resource": resources[service],
                    "scopeSpans": [
                        {"scope": {"name": "opentelemetry.instrumentation"}, "spans": spans}
                    ],
                }
                for service, spans in batch.items()
            ]
        }
        f.write(orjson.dumps(doc) + b"\n")
        batch.clear()

    for count, (service, span) in enumerate(_ended(n, seed, per_trace), 1):
        batch.setdefault(service, []).append(span)
        if count % BATCH == 0:
            flush()
    if batch:
        flush()


_ORJSON = """
import sys, orjson
docs = []
with open(sys.argv[1], "rb") as f:
    for line in f:
        docs.append(orjson.loads(line))
"""
_GRAPH = (
    "import sys\nfrom tracectx.cli import main\nif main(sys.argv[1:]):\n    raise SystemExit(1)\n"
)
_IMPORTS = "import orjson, msgspec, tracectx.cli, tracectx.viz.cli, tracectx.viz.sources.traces"
# Each child reports its own high-water mark (VmHWM): ru_maxrss of a child also counts the
# parent's memory it was forked from, which hides small peaks.
_HWM = """
import atexit, sys
def _hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            sys.stderr.write("VmHWM " + line.split()[1] + "\\n")
atexit.register(_hwm)
"""


def _child(code: str, *args: str) -> dict[str, float]:
    """Run `code` in a fresh interpreter: its wall and CPU seconds, peak RSS in MB."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", _HWM + code, *args],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert proc.stderr is not None
    err = proc.stderr.read().decode()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{code[:60]!r} {args} failed with {proc.returncode}: {err[-2000:]}")
    kb = [int(line.split()[1]) for line in err.splitlines() if line.startswith("VmHWM ")]
    return {
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "rss_mb": (kb[-1] if kb else usage.ru_maxrss) / 1024,
    }


def measure(n: int, workdir: Path) -> dict[str, float]:
    data = workdir / f"export-{n}.jsonl"
    size = write_export(data, n)
    out = workdir / f"graph-{n}.json"
    base = _child(_IMPORTS)["rss_mb"]
    plain_base = _child("import sys, orjson")["rss_mb"]
    plain = _child(_ORJSON, str(data))
    graph = _child(_GRAPH, "graph", str(data), "--format", "json", "-o", str(out))
    result = {"n": n, "input_mb": size / 1e6, "baseline_rss_mb": base, "output_mb": 0.0}
    result["output_mb"] = out.stat().st_size / 1e6
    for name, m, before in (("orjson", plain, plain_base), ("tracectx", graph, base)):
        result[f"{name}_wall_s"] = m["wall_s"]
        result[f"{name}_cpu_s"] = m["cpu_s"]
        result[f"{name}_peak_mb"] = max(m["rss_mb"] - before, 0.0)
    data.unlink()
    out.unlink()
    return result


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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", nargs="?", type=int, default=1_000_000, help="largest size")
    parser.add_argument("--sizes", help="comma-separated span counts (instead of N/100,N/10,N)")
    parser.add_argument("--scaling", action="store_true", help="renderer call counts instead")
    parser.add_argument("--dir", help="where to write the generated files (default: a temp dir)")
    args = parser.parse_args()
    if args.scaling:
        scaling()
        return
    if args.sizes:
        sizes = [int(s) for s in args.sizes.split(",")]
    else:
        sizes = [s for s in (args.n // 100, args.n // 10, args.n) if s >= 1000] or [args.n]
    results = []
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        for n in sizes:
            results.append(measure(n, Path(tmp)))
            print(f"measured {n:,} spans", file=sys.stderr, flush=True)
    rows = []
    for m in results:
        case = f"{m['n']:,} spans"
        for name, label in (
            ("orjson", "orjson.loads (lines)"),
            ("tracectx", "tracectx graph json"),
        ):
            rows.append(
                {
                    "case": case,
                    "variant": label,
                    "us_per_op": m[f"{name}_cpu_s"] * 1e6 / m["n"],
                    "wall_us_per_op": m[f"{name}_wall_s"] * 1e6 / m["n"],
                    "peak_mb": m[f"{name}_peak_mb"],
                }
            )
    out = report("viz", rows, baseline="orjson.loads (lines)")
    print("\n(µs/op above: CPU time per span of the whole child process)")
    for m in results:
        print(
            f"{m['n']:>9,} spans: input {m['input_mb']:,.1f} MB ({m['input_mb'] * 1e6 / m['n']:.0f}"
            f" B/span), output {m['output_mb']:,.1f} MB | peak RSS over a "
            f"{m['baseline_rss_mb']:.0f} MB interpreter (orjson's: its own): orjson {m['orjson_peak_mb']:,.0f} MB "
            f"({m['orjson_peak_mb'] / m['input_mb']:.2f}x input), tracectx "
            f"{m['tracectx_peak_mb']:,.0f} MB ({m['tracectx_peak_mb'] / m['input_mb']:.2f}x) | "
            f"time tracectx/orjson: CPU {m['tracectx_cpu_s'] / m['orjson_cpu_s']:.2f}x, "
            f"wall {m['tracectx_wall_s'] / m['orjson_wall_s']:.2f}x"
        )

    def per(m: dict[str, float], key: str) -> float:
        return m[key] / m["n"]

    for a, b in itertools.pairwise(results):  # 1.00 = linear; small sizes carry the startup
        print(
            f"growth of per-span cost {a['n']:,} -> {b['n']:,} spans (1.00 = linear): "
            f"tracectx CPU x{per(b, 'tracectx_cpu_s') / per(a, 'tracectx_cpu_s'):.2f}, "
            f"orjson CPU x{per(b, 'orjson_cpu_s') / per(a, 'orjson_cpu_s'):.2f}, "
            f"tracectx peak MB x{b['tracectx_peak_mb'] / max(a['tracectx_peak_mb'], 1e-9):.2f} "
            f"for x{b['n'] / a['n']:.0f} spans"
        )
    out["details"] = results
    report_path = ROOT / "bench" / "results" / "viz.json"
    report_path.write_text(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()
