"""``tracectx graph``: load spans, analyse, render."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tracectx.safetext import escape_control
from tracectx.viz.analysis import analyse
from tracectx.viz.model import SpanSet

__all__ = ["add_graph_parser", "run_graph"]

FORMATS = ("terminal", "html", "mermaid", "dot", "json", "jaeger-json")


def add_graph_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    graph = sub.add_parser("graph", help="rebuild and render error propagation paths from spans")
    graph.add_argument(
        "files", nargs="*", help="OTLP JSON / Jaeger JSON files (any accepted shape)"
    )
    graph.add_argument("--jaeger", metavar="URL", help="Jaeger query base URL to fetch from")
    graph.add_argument("--trace-id", action="append", default=[], help="trace to fetch (repeat)")
    graph.add_argument("--service", help="fetch recent traces of this service")
    graph.add_argument("--format", choices=FORMATS, default="terminal")
    graph.add_argument("-o", "--output", help="write here instead of stdout")
    graph.add_argument("--full", action="store_true", help="show every span, not only error paths")
    graph.add_argument("--jaeger-ui", metavar="URL", help="Jaeger UI base URL for deep links")


def _load(args: argparse.Namespace) -> SpanSet:
    from rich.progress import Progress

    from tracectx.viz.sources import load_spans
    from tracectx.viz.sources.jaeger_api import fetch_service, fetch_trace

    spans = SpanSet()
    with Progress(transient=True, disable=len(args.files) + len(args.trace_id) < 3) as progress:
        task = progress.add_task("loading spans", total=len(args.files) + len(args.trace_id))
        for path in args.files:
            spans.extend(load_spans([path]))
            progress.advance(task)
        if args.jaeger:
            for trace_id in args.trace_id:
                spans.extend(fetch_trace(args.jaeger, trace_id))
                progress.advance(task)
            if args.service:
                spans.extend(fetch_service(args.jaeger, args.service))
    return spans


def _warn(message: str) -> None:
    print(f"tracectx graph: {escape_control(message, 1000)}", file=sys.stderr)


def run_graph(args: argparse.Namespace) -> int:
    """Exit 0 with the graph (input problems as warnings on stderr), 1 when nothing usable was
    found or Jaeger failed, 2 for a usage error."""
    from tracectx.viz import renderers
    from tracectx.viz.sources.jaeger_api import JaegerAPIError

    if not args.files and not args.jaeger:
        print("tracectx graph: give span files or --jaeger URL", file=sys.stderr)
        return 2
    try:
        spans = _load(args)
    except JaegerAPIError as exc:
        _warn(str(exc))
        return 1
    analyses = analyse(spans)
    # analyse() puts the input's problems first on the first trace; with no trace, only here.
    problems = [p for a in analyses for p in a.problems] if analyses else spans.problems
    for problem in problems:
        _warn(problem)
    if not spans.spans:
        sources = ", ".join(args.files) or args.jaeger
        _warn(f"no spans found in {sources}")
        return 1
    ui = args.jaeger_ui or args.jaeger
    if args.format == "terminal":
        renderers.render_terminal(analyses, full=args.full, problems=False)
        if ui:
            for a in analyses:
                print(escape_control(renderers.jaeger_link(ui, a)))
        return 0
    if args.format == "html":
        text = renderers.render_html(analyses, jaeger_url=ui, full=args.full)
    elif args.format == "mermaid":
        text = renderers.render_mermaid(analyses)
    elif args.format == "dot":
        text = renderers.render_dot(analyses)
    elif args.format == "json":
        text = json.dumps(renderers.to_json_data(analyses, ui), indent=2, default=str)
    else:
        text = json.dumps(renderers.annotated_jaeger_json(analyses), default=str)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"wrote {escape_control(args.output)}")
    else:
        sys.stdout.write(text)
    return 0
