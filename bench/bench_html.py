"""The HTML page on one big trace: ``python -m bench.bench_html [N]`` (default 100,000 spans, about
3,900 error paths; tests/viz/big_trace.py) written as OTLP JSON, then

- ``tracectx graph FILE --format html -o PAGE`` in a fresh process: wall and CPU seconds, peak
  RSS (the child's VmHWM) and the page's size;
- the page opened in headless Chromium (tests/viz/html_browser.py) ``--loads`` times: seconds
  until it says it is ready, and the page's own ``performance.now()`` at that moment.

Times are noisy on a shared machine: run it when the machine is quiet, and read the best of the
loads. ``--profile`` prints the command's top functions (cProfile) instead.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from tests.viz.big_trace import big_trace
from tracectx.viz.model import Span

ROOT = Path(__file__).resolve().parents[1]
_KINDS = {"internal": 1, "server": 2, "client": 3, "producer": 4, "consumer": 5}


def _value(v: Any) -> dict[str, Any]:
    if isinstance(v, bool):
        return {"boolValue": v}
    if isinstance(v, int):
        return {"intValue": str(v)}
    return {"stringValue": str(v)}


def _otlp(span: Span) -> dict[str, Any]:
    out: dict[str, Any] = {
        "traceId": span.trace_id,
        "spanId": span.span_id,
        "parentSpanId": span.parent_id or "",
        "name": span.name,
        "kind": _KINDS[span.kind],
        "startTimeUnixNano": str(span.start_ns),
        "endTimeUnixNano": str(span.end_ns),
        "attributes": [{"key": k, "value": _value(v)} for k, v in span.attributes.items()],
        "status": {"code": 2, "message": span.status_message} if span.error else {},
    }
    if span.events:
        out["events"] = [
            {
                "timeUnixNano": str(e.time_ns),
                "name": e.name,
                "attributes": [{"key": k, "value": _value(v)} for k, v in e.attributes.items()],
            }
            for e in span.events
        ]
    return out


def write_otlp(path: Path, spans: list[Span]) -> None:
    """`spans` as one OTLP JSON document, grouped by service."""
    by_service: dict[str, list[dict[str, Any]]] = {}
    for span in spans:
        by_service.setdefault(span.service, []).append(_otlp(span))
    doc = {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": service}}]
                },
                "scopeSpans": [{"scope": {"name": "bench"}, "spans": items}],
            }
            for service, items in by_service.items()
        ]
    }
    path.write_bytes(orjson.dumps(doc))


_HWM = """
import atexit, sys
def _hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            sys.stderr.write("VmHWM " + line.split()[1] + "\\n")
atexit.register(_hwm)
from tracectx.cli import main
if main(sys.argv[1:]):
    raise SystemExit(1)
"""


def write_page(data: Path, page: Path) -> dict[str, float]:
    """Run ``tracectx graph --format html`` in a fresh process: seconds, CPU, peak MB, page MB."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", _HWM, "graph", str(data), "--format", "html", "-o", str(page)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert proc.stderr is not None
    err = proc.stderr.read().decode()
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(err[-2000:])
    kb = [int(line.split()[1]) for line in err.splitlines() if line.startswith("VmHWM ")]
    return {
        "wall_s": time.perf_counter() - start,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_mb": kb[-1] / 1024,
        "page_mb": page.stat().st_size / 1e6,
    }


def load_page(page: Path, loads: int, profile: Path) -> list[tuple[float, float]]:
    """(seconds until ready, the page's performance.now() then) for each load."""
    from tests.viz.html_browser import Browser

    browser = Browser(profile, 1600, 1200)
    try:
        out = []
        for _ in range(loads):
            seconds = browser.open(page)
            out.append((seconds, float(browser.eval("document.body.dataset.renderMs")) / 1000))
            assert browser.errors() == [], browser.errors()
        return out
    finally:
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", nargs="?", type=int, default=100_000, help="spans in the trace")
    parser.add_argument("--loads", type=int, default=3, help="page loads in Chromium")
    parser.add_argument("--profile", action="store_true", help="cProfile the command instead")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data, page = Path(tmp) / "trace.otlp.json", Path(tmp) / "page.html"
        write_otlp(data, big_trace(args.n))
        if args.profile:
            from tracectx.cli import main as cli

            cProfile.runctx(
                "cli(['graph', str(data), '--format', 'html', '-o', str(page)])",
                globals(),
                {"cli": cli, "data": data, "page": page},
                str(Path(tmp) / "prof"),
            )
            pstats.Stats(str(Path(tmp) / "prof")).sort_stats("cumulative").print_stats(30)
            return
        w = write_page(data, page)
        print(
            f"{args.n:,} spans: input {data.stat().st_size / 1e6:.1f} MB; page {w['page_mb']:.1f} MB"
            f" written in {w['wall_s']:.2f} s (CPU {w['cpu_s']:.2f} s), peak {w['peak_mb']:.0f} MB"
        )
        for seconds, ready in load_page(page, args.loads, Path(tmp) / "chromium"):
            print(f"  Chromium: ready after {seconds:.2f} s (page clock {ready:.2f} s)")


if __name__ == "__main__":
    main()
