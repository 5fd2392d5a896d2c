"""``tracectx stream``: registered in the ``tracectx.commands`` entry-point group."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``stream`` subcommand."""
    p = sub.add_parser(
        "stream",
        help="error analysis as a Kafka consumer group over the span stream",
        description="Join a consumer group on OTLP span topics, assemble traces, find error "
        "paths (origin, propagators, absorber) and emit them.",
    )
    p.add_argument("--bootstrap-servers", required=True)
    p.add_argument("--topic", action="append", dest="topics", help="span topic (repeatable)")
    p.add_argument("--group", default="tracectx-stream")
    p.add_argument("--format", choices=("otlp_proto", "otlp_json", "auto"), default="auto")
    p.add_argument(
        "--partitioned-by-trace",
        action="store_true",
        help="input is keyed by trace id (Collector partition_traces_by_id): skip re-keying",
    )
    p.add_argument("--rekey-topic", default="tracectx.spans-by-trace")
    p.add_argument("--paths-topic", default="tracectx.error-paths", help="'' to not write")
    p.add_argument("--alerts-topic", default="tracectx.error-events")
    p.add_argument("--wait", type=float, default=10.0, help="seconds a trace must be quiet")
    p.add_argument("--grace", type=float, help="seconds a late span may re-open a trace")
    p.add_argument("--max-traces", type=int, default=100_000)
    p.add_argument("--idle-exit", type=float, help="exit after this many seconds without input")
    p.add_argument(
        "--flow-snapshot",
        type=Path,
        help="write the flow graph here on exit: the HTML page if PATH ends in .html, else JSON",
    )
    p.add_argument(
        "--http", metavar="HOST:PORT", help="serve /flow, /flow.html, /stats, /healthz, /readyz"
    )
    p.add_argument(
        "--check-propagation",
        action="store_true",
        help="find hops that lost trace context across recent traces (GET /propagation)",
    )
    p.add_argument(
        "--stall",
        type=float,
        default=30.0,
        help="seconds without a good step before a stage is unhealthy (/healthz 503)",
    )
    p.add_argument(
        "--give-up",
        type=float,
        default=300.0,
        help="seconds a stage may fail without a good step before the instance exits 1",
    )
    p.add_argument("--otlp-endpoint", help="write each error path back as a trace (OTLP/HTTP)")
    p.add_argument("--alerts", type=Path, help="alert YAML: evaluate rules on the error paths")
    p.set_defaults(handler=_run)


def _flow_page(snapshot: dict[str, Any], propagation: Any = None) -> str:
    """The fleet flow page (the renderer is imported here: registering the command stays cheap)."""
    from tracectx.viz.renderers.flow_html import render_flow_html

    page = render_flow_html(snapshot)
    if propagation is not None:  # --check-propagation: where traces broke, below the flow
        from tracectx.viz.renderers.propagation import add_propagation_section

        page = add_propagation_section(page, propagation)
    return page


def _write_flow_snapshot(path: Path, snapshot: dict[str, Any]) -> None:
    """The flow snapshot as the fleet flow page when `path` ends in ``.html``, else as JSON."""
    if path.suffix.lower() == ".html":
        path.write_text(_flow_page(snapshot), encoding="utf-8")
    else:
        path.write_text(json.dumps(snapshot, indent=1), encoding="utf-8")


def _run(args: argparse.Namespace) -> int:
    from tracectx.viz.collector import fewer_collections
    from tracectx_stream import StreamSettings, build_stream
    from tracectx_stream.supervise import StageFailed

    settings = StreamSettings(
        bootstrap_servers=args.bootstrap_servers,
        topics=tuple(args.topics or ["otlp_spans"]),
        group=args.group,
        input_format=args.format,
        partitioned_by_trace=args.partitioned_by_trace,
        rekey_topic=args.rekey_topic,
        paths_topic=args.paths_topic or None,
        alerts_topic=args.alerts_topic,
        wait_s=args.wait,
        grace_s=args.grace,
        max_traces=args.max_traces,
        idle_exit_s=args.idle_exit,
        check_propagation=args.check_propagation,
        stall_s=args.stall,
        give_up_s=args.give_up,
    )
    stream = build_stream(settings, otlp_endpoint=args.otlp_endpoint, alerts=args.alerts)
    stopping = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if stopping.is_set():
            raise SystemExit(128 + signum)
        stopping.set()
        stream.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    server = None
    if args.http:
        from tracectx_stream.http import serve

        host, _, port = args.http.rpartition(":")
        server = serve(
            {
                "/flow": stream.flow.snapshot,
                "/stats": lambda: _stats(stream),
                "/propagation": lambda: (
                    stream.propagation_report() or (404, {"error": "run with --check-propagation"})
                ),
                "/healthz": lambda: _probe(stream.healthy()),
                "/readyz": lambda: _probe(stream.ready()),
            },
            host or "127.0.0.1",
            int(port),
            pages={
                "/flow.html": lambda: _flow_page(stream.flow.snapshot(), stream.propagation_check())
            },
        )
        print(f"tracectx stream: serving on {server.server_address}", file=sys.stderr, flush=True)
    failed = False
    try:
        with fewer_collections():  # the assembler holds many spans: ~40 % more spans/CPU-s
            stream.run()
    except StageFailed as exc:  # logged by the supervisor; the orchestrator restarts us
        print(f"tracectx stream: exiting, {exc}", file=sys.stderr, flush=True)
        failed = True
    finally:
        if server is not None:
            server.shutdown()
        if args.flow_snapshot:
            _write_flow_snapshot(args.flow_snapshot, stream.flow.snapshot())
        print(json.dumps(stream.stats.as_dict(), default=str), file=sys.stderr, flush=True)
    return 1 if failed else 0


def _stats(stream: Any) -> dict[str, Any]:
    """The instance's counters, with the propagation health table when it is checked."""
    out: dict[str, Any] = stream.stats.as_dict()
    report = stream.propagation_report()
    if report is not None:
        out["propagation"] = report["health"]
    return out


def _probe(result: tuple[bool, dict[str, Any]]) -> tuple[int, dict[str, Any]]:
    """A probe's answer: 200 when `ok`, else 503 (the Kubernetes probe convention)."""
    ok, detail = result
    return (200 if ok else 503), detail
