"""The ``tracectx`` command: a dispatcher for subcommands that register themselves.

Each subcommand is an entry point in the ``tracectx.commands`` group whose object is a
``register(subparsers)`` function: it adds its parser and sets ``handler`` (a function of the
parsed arguments returning the exit status). ``graph`` comes from the visualiser, ``demo`` from
the demo package — the core knows neither. A subcommand whose extra is not installed still shows
up, and says what to install; so does ``demo`` without its distribution (one line, exit 2).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from importlib import metadata

__all__ = ["COMMANDS_GROUP", "main"]

COMMANDS_GROUP = "tracectx.commands"
Handler = Callable[[argparse.Namespace], int]
#: Commands shipped in distributions of their own, and how to get each.
ELSEWHERE = {
    "demo": "the demo is its own distribution, tracectx-demo: in a tracectx checkout, "
    "pip install './demo[embedded]' (or run ./scripts/demo.sh)",
}


def _elsewhere(name: str) -> Handler:
    def handler(args: argparse.Namespace) -> int:
        print(f"tracectx {name}: not installed; {ELSEWHERE[name]}", file=sys.stderr)
        return 2

    return handler


def _missing(name: str, error: ImportError) -> Handler:
    def handler(args: argparse.Namespace) -> int:
        print(
            f"tracectx {name}: a package it needs is not installed ({error.name or error}).\n"
            f"Install the extra that provides it, e.g. pip install 'tracectx[all]'",
            file=sys.stderr,
        )
        return 2

    return handler


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tracectx", description="Error propagation across every hop, from your spans."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    eps = sorted(metadata.entry_points(group=COMMANDS_GROUP), key=lambda e: e.name)
    for name in sorted(set(ELSEWHERE) - {ep.name for ep in eps}):
        absent = sub.add_parser(name, help=f"(not installed: tracectx {name} says how to get it)")
        absent.set_defaults(handler=_elsewhere(name), any_arguments=True)
    for ep in eps:
        try:
            ep.load()(sub)
        except ImportError as exc:
            missing = sub.add_parser(ep.name, help=f"(not installed: {exc.name or exc})")
            missing.set_defaults(handler=_missing(ep.name, exc), any_arguments=True)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``tracectx`` console script."""
    parser = _build_parser()
    # A command that is not installed takes any arguments (``tracectx demo --out x`` still
    # says how to install it); the others are parsed strictly, as parse_args would.
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "any_arguments", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    handler: Handler = args.handler
    return int(handler(args))


if __name__ == "__main__":
    sys.exit(main())
