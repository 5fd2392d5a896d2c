"""The ``tracectx`` command: ``tracectx demo`` and ``tracectx graph``."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

__all__ = ["main"]


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tracectx", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run the end-to-end demo on embedded defaults")
    demo.add_argument("--out", help="folder for the HTML and OTLP JSON (tracectx-demo)")
    demo.add_argument("--bootstrap-servers", help="external Kafka instead of embedded tansu")
    demo.add_argument("--broker-url", help="external Redis for Celery instead of in-memory")
    demo.add_argument("--jaeger", metavar="UI_URL", help="send spans to Jaeger (OTLP/HTTP :4318)")
    demo.add_argument("--alertmanager", metavar="URL", help="also send alerts to Alertmanager")
    try:
        from tracectx.viz.cli import add_graph_parser
    except ImportError:  # core install without the viz extra
        pass
    else:
        add_graph_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``tracectx`` console script."""
    args = _build_parser().parse_args(argv)
    if args.command == "demo":
        try:
            demo = importlib.import_module("tracectx_demo")  # uses every integration
        except ImportError as exc:
            print(f"tracectx demo needs the 'all' extra: pip install 'tracectx[all]' ({exc})")
            return 2
        options = demo.DemoOptions.from_env(
            out=args.out,
            bootstrap_servers=args.bootstrap_servers,
            broker_url=args.broker_url,
            jaeger=args.jaeger,
            alertmanager=args.alertmanager,
        )
        return int(demo.run_demo(options))
    if args.command == "graph":
        from tracectx.viz.cli import run_graph

        return run_graph(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
