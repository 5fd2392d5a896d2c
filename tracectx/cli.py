"""The ``tracectx`` command: ``tracectx demo`` and ``tracectx graph``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = ["main"]


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tracectx", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run the end-to-end demo on embedded defaults")
    demo.add_argument("--out", default="tracectx-demo", help="folder for the HTML and OTLP JSON")
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
        from tracectx.demo import run_demo

        return run_demo(out_dir=args.out)
    if args.command == "graph":
        from tracectx.viz.cli import run_graph

        return run_graph(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
