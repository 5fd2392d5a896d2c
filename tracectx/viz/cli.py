"""``tracectx graph``: load spans (files, Jaeger traces by id, a Jaeger search), analyse, render.

A Jaeger search is what an SRE asks: a service's traces of the last `--lookback`, at most
`--limit`, of one `--operation`, and only those with a failing span (`--errors-only`) or a span
with given tags (`--tag tracectx.error.role=origin`). A search that finds nothing is an empty
result (exit 0, a note on stderr), not an error. Long work shows progress on stderr when, and
only when, stderr is a terminal.

``--format json`` of span files streams: the files are read twice (span counts per trace, then
the spans), each trace is analysed and written as soon as it is complete, so a big export is
never held whole (see `tracectx.viz.sources.traces`). The other formats draw all traces at once.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from tracectx.safetext import escape_control
from tracectx.viz.analysis import TraceAnalysis, analyse
from tracectx.viz.collector import fewer_collections
from tracectx.viz.model import SpanSet
from tracectx.viz.sources.jaeger_api import JaegerAPIError, TraceSearch, parse_lookback, parse_tag

if TYPE_CHECKING:  # rich (the viz extra) is imported only when the command runs
    from tracectx.viz.progress import Stages
    from tracectx.viz.propagation_check import PropagationReport

__all__ = ["add_graph_parser", "run_graph"]

FORMATS = ("terminal", "html", "mermaid", "dot", "json", "jaeger-json")
_SEARCH_OPTIONS = ("lookback", "limit", "operation", "errors_only", "tag")
_PROPAGATION_FORMATS = ("terminal", "json", "html")  # where --check-propagation is shown


def _lookback(text: str) -> dt.timedelta:
    try:
        return parse_lookback(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _limit(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 10_000:
        raise argparse.ArgumentTypeError(f"limit {text!r}: expected a whole number 1..10000")
    return value


def _tag(text: str) -> tuple[str, str]:
    try:
        return parse_tag(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_graph_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    graph = sub.add_parser("graph", help="rebuild and render error propagation paths from spans")
    graph.add_argument(
        "files", nargs="*", help="OTLP JSON / Jaeger JSON files (any accepted shape)"
    )
    graph.add_argument("--jaeger", metavar="URL", help="Jaeger query base URL to fetch from")
    graph.add_argument("--trace-id", action="append", default=[], help="trace to fetch (repeat)")
    graph.add_argument("--service", help="search Jaeger for this service's recent traces")
    search = graph.add_argument_group("Jaeger search (with --service)")
    search.add_argument(
        "--lookback",
        type=_lookback,
        metavar="AGE",
        help="how far back to search: 30m, 1h, 2d, 1w (default 1h)",
    )
    search.add_argument(
        "--limit", type=_limit, metavar="N", help="analyse at most N traces (default 20)"
    )
    search.add_argument("--operation", metavar="NAME", help="only traces with this operation")
    search.add_argument(
        "--errors-only",
        action="store_true",
        help="only traces with a failing span (the tag query error=true)",
    )
    search.add_argument(
        "--tag",
        type=_tag,
        action="append",
        metavar="KEY=VALUE",
        help="only traces with a span carrying every such tag, e.g. tracectx.error.role=origin",
    )
    graph.add_argument("--format", choices=FORMATS, default="terminal")
    graph.add_argument("-o", "--output", help="write here instead of stdout")
    graph.add_argument("--full", action="store_true", help="show every span, not only error paths")
    graph.add_argument("--jaeger-ui", metavar="URL", help="Jaeger UI base URL for deep links")
    graph.add_argument(
        "--check-propagation",
        action="store_true",
        help="find the hops that lost trace context (dropped hops, orphans, split traces, "
        "clock skew, in-process loss), join split traces for the error paths, and show a "
        "propagation health table (terminal, json and html formats)",
    )


def _search(args: argparse.Namespace) -> TraceSearch:
    attributes = dict(args.tag or [])
    if args.errors_only:
        attributes.setdefault("error", "true")
    return TraceSearch(
        service=args.service,
        lookback=args.lookback or dt.timedelta(hours=1),
        limit=args.limit or 20,
        operation=args.operation,
        attributes=attributes,
    )


def _load(args: argparse.Namespace, stages: Stages) -> SpanSet:
    from tracectx.viz.sources import load_spans
    from tracectx.viz.sources.jaeger_api import fetch_service, fetch_trace

    spans = SpanSet()
    for path in args.files:
        spans.extend(load_spans([path], progress=stages.report))
    if args.jaeger:
        for trace_id in args.trace_id:
            stages.stage(f"fetching trace {trace_id}")
            spans.extend(fetch_trace(args.jaeger, trace_id))
        if args.service:
            search = _search(args)
            stages.stage(f"searching Jaeger: {search.describe()}")
            found = fetch_service(args.jaeger, search)
            if not found.spans and not found.problems:
                _warn(f"no traces found in Jaeger at {args.jaeger} for {search.describe()}")
            spans.extend(found)
    return spans


def _warn(message: str) -> None:
    print(f"tracectx graph: {escape_control(message, 1000)}", file=sys.stderr)


def _usage_error(args: argparse.Namespace) -> str | None:
    if not args.files and not args.jaeger:
        return "give span files or --jaeger URL"
    if args.service and not args.jaeger:
        return "--service searches Jaeger: give --jaeger URL too"
    used = [o for o in _SEARCH_OPTIONS if getattr(args, o, None)]
    if used and not args.service:
        names = ", ".join("--" + o.replace("_", "-") for o in used)
        return f"{names} refine a Jaeger search: give --jaeger URL --service NAME too"
    return None


def _flow_snapshot(path: str) -> dict[str, Any] | None:
    """The flow snapshot `tracectx stream` wrote at `path`, or None for any other file (the
    span readers then read it and report its problems)."""
    from tracectx.viz.renderers.flow_html import read_flow_snapshot

    try:
        return read_flow_snapshot(path)
    except (OSError, ValueError):  # the span readers then say what is wrong with the file
        return None


def run_graph(args: argparse.Namespace) -> int:
    """Exit 0 with the graph (input problems as warnings on stderr; an empty Jaeger search is
    an empty graph), 1 when files or trace ids gave nothing usable or Jaeger failed (or the
    output could not be written), 2 for a usage error."""
    with fewer_collections():
        return _run_graph(args)


def _run_graph(args: argparse.Namespace) -> int:
    from tracectx.viz.progress import Stages

    usage = _usage_error(args)
    if usage:
        print(f"tracectx graph: {usage}", file=sys.stderr)
        return 2
    if args.format == "html" and len(args.files) == 1 and not args.jaeger:
        snapshot = _flow_snapshot(args.files[0])
        if snapshot is not None:  # a `tracectx stream` flow snapshot: the fleet flow page
            from tracectx.viz.renderers.flow_html import render_flow_html

            page = render_flow_html(snapshot).encode("utf-8")

            def write(out: IO[bytes]) -> None:
                out.write(page)

            return _emit(args, write)
    if args.format == "json" and not args.jaeger and not args.check_propagation:
        return _stream_json(args)  # the check needs every trace at once: no streaming then
    with Stages() as stages:
        try:
            spans = _load(args, stages)
        except JaegerAPIError as exc:
            stages.stop()
            _warn(str(exc))
            return 1
        stages.stage(f"analysing {len(spans.spans):,} spans")
        report = None
        if args.check_propagation and args.format in _PROPAGATION_FORMATS:
            from tracectx.viz.propagation_check import check_propagation
            from tracectx.viz.trace_join import analyse_joined

            report = check_propagation(spans)
            analyses = analyse_joined(spans, report)
        else:
            analyses = analyse(spans)
        stages.stop()
        # analyse() puts the input's problems first on the first trace; with no trace, only here.
        problems = [p for a in analyses for p in a.problems] if analyses else spans.problems
        for problem in problems:
            _warn(problem)
        if not spans.spans and (args.files or args.trace_id):
            sources = ", ".join(args.files) or args.jaeger
            _warn(f"no spans found in {sources}")
            return 1
    with Stages() as stages:
        return _render(args, analyses, stages, report)


def _spool_dir(args: argparse.Namespace) -> str | None:
    """Where the JSON writer spools: next to the output file (not a RAM-backed /tmp), else
    the temp directory (a missing directory is then reported when the output is written)."""
    where = os.path.dirname(os.path.abspath(args.output)) if args.output else None
    return where if where and os.path.isdir(where) else None


def _stream_json(args: argparse.Namespace) -> int:
    """``--format json`` of files, one trace at a time: memory holds the traces being read,
    not the file (input problems, then the traces' own, go to stderr as in `run_graph`)."""
    from tracectx.viz.progress import Stages
    from tracectx.viz.renderers.json import JsonWriter
    from tracectx.viz.sources.traces import count_spans, traces

    problems: list[str] = []
    trace_problems: list[str] = []
    with Stages() as stages, JsonWriter(args.jaeger_ui, _spool_dir(args)) as writer:
        counts = count_spans(args.files, stages.report)
        for spans in traces(args.files, counts, problems, stages.report):
            for analysis in analyse(spans):
                trace_problems.extend(analysis.problems)
                writer.add(analysis)
        del counts
        stages.stop()
        for problem in [*problems, *trace_problems]:
            _warn(problem)
        if not writer.traces:
            _warn(f"no spans found in {', '.join(args.files)}")
            return 1
        return _emit(args, lambda out: writer.finish(out, problems))


def _emit(args: argparse.Namespace, write: Callable[[IO[bytes]], None]) -> int:
    """Hand `write` the output file (``-o``) or stdout's bytes; 1 if the file cannot be written."""
    if args.output:
        try:
            with open(args.output, "wb") as f:
                write(f)
        except OSError as exc:
            _warn(f"cannot write {args.output}: {exc.strerror or exc}")
            return 1
        print(f"wrote {escape_control(args.output)}")
        return 0
    sys.stdout.flush()
    buffer = getattr(sys.stdout, "buffer", None)
    if isinstance(buffer, io.BufferedIOBase | io.RawIOBase):
        write(buffer)  # type: ignore[arg-type]
        buffer.flush()
    else:  # a text-only stdout (some test harnesses): one string
        data = io.BytesIO()
        write(data)
        sys.stdout.write(data.getvalue().decode("utf-8", "surrogateescape"))
    return 0


def _render(
    args: argparse.Namespace,
    analyses: list[TraceAnalysis],
    stages: Stages,
    report: PropagationReport | None = None,
) -> int:
    from tracectx.viz import renderers
    from tracectx.viz.renderers.propagation import propagation_data, propagation_lines

    if args.check_propagation and report is None:  # exports show the traces as they were read
        shown = ", ".join(_PROPAGATION_FORMATS)
        _warn(f"--check-propagation is shown in the {shown} formats, not {args.format}")

    ui = args.jaeger_ui or args.jaeger
    if args.format == "terminal":
        stages.stop()  # the tree goes to the same terminal
        try:
            render_terminal = renderers.render_terminal
        except ModuleNotFoundError as exc:
            _warn(
                f"the terminal format needs {exc.name}: pip install 'tracectx[viz]' "
                "(json, html, mermaid, dot and jaeger-json need nothing more)"
            )
            return 2
        render_terminal(analyses, full=args.full, problems=False)
        if ui:
            for a in analyses:
                print(escape_control(renderers.jaeger_link(ui, a)))
        if report is not None:
            print("\n".join(propagation_lines(report)))
        return 0
    if args.format == "json":
        from tracectx.viz.renderers.json import JsonWriter

        stages.stop()
        with JsonWriter(ui, _spool_dir(args)) as writer:
            if report is not None:
                writer.sections["propagation"] = propagation_data(report)
            for analysis in analyses:
                writer.add(analysis)
            return _emit(args, writer.finish)
    stages.stage(f"rendering {args.format}")
    if args.format == "html":
        text = renderers.render_html(analyses, jaeger_url=ui, full=args.full)
        if report is not None:
            from tracectx.viz.renderers.propagation import add_propagation_section

            text = add_propagation_section(text, report)
    elif args.format == "mermaid":
        text = renderers.render_mermaid(analyses)
    elif args.format == "dot":
        text = renderers.render_dot(analyses)
    else:
        text = json.dumps(renderers.annotated_jaeger_json(analyses), default=str)
    stages.stop()
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"wrote {escape_control(args.output)}")
    else:
        sys.stdout.write(text)
    return 0
