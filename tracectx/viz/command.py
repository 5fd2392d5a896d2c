"""``tracectx graph``: registered in the ``tracectx.commands`` entry-point group."""

from __future__ import annotations

import argparse

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``graph`` subcommand to the ``tracectx`` command."""
    from tracectx.viz.cli import add_graph_parser, run_graph

    add_graph_parser(sub)
    sub.choices["graph"].set_defaults(handler=run_graph)
