"""The end of the demo: the error propagation graph in the terminal, the files, the links."""

from __future__ import annotations

from pathlib import Path

from tracectx.safetext import escape_control
from tracectx.viz import analyse
from tracectx.viz.renderers import render_html, render_mermaid, render_terminal
from tracectx.viz.renderers.jaeger import jaeger_link
from tracectx.viz.sources.memory import from_readable_spans
from tracectx_demo.options import DemoOptions
from tracectx_demo.telemetry import Telemetry

__all__ = ["report"]


def report(telemetry: Telemetry, out: Path, options: DemoOptions) -> int:
    analyses = analyse(from_readable_spans(telemetry.memory.get_finished_spans()))
    print()
    render_terminal(analyses)
    html_path = out / "errors.html"
    html_path.write_text(render_html(analyses, jaeger_url=options.jaeger_ui), encoding="utf-8")
    mermaid_path = out / "errors.mmd"
    mermaid_path.write_text(render_mermaid(analyses), encoding="utf-8")
    errors = sum(len(a.errors) for a in analyses)
    print(f"\n{len(analyses)} trace(s), {errors} error path(s), {len(telemetry.alerts)} alert(s)")
    print(f"open {html_path}  (error graph, offline page)")
    print(f"spans: {out / 'spans.otlp.jsonl'}  (OTLP JSON; `tracectx graph` rebuilds the graph)")
    print(f"mermaid: {mermaid_path}")
    if options.jaeger_ui:
        print(f"spans also sent to {options.otlp_endpoint}; in Jaeger:")
        for analysis in analyses:
            if analysis.errors:
                print(f"  {escape_control(jaeger_link(options.jaeger_ui, analysis))}")
    return 0
