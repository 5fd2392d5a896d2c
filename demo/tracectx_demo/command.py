"""``tracectx demo``: registered in the ``tracectx.commands`` entry-point group."""

from __future__ import annotations

import argparse

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``demo`` subcommand (its flags win over the ``TRACECTX_DEMO_*`` environment)."""
    demo = sub.add_parser("demo", help="run the end-to-end demo on embedded defaults")
    demo.add_argument("--out", help="folder for the HTML and OTLP JSON (tracectx-demo)")
    demo.add_argument("--bootstrap-servers", help="external Kafka instead of embedded tansu")
    demo.add_argument("--broker-url", help="external Redis for Celery instead of in-memory")
    demo.add_argument("--jaeger", metavar="UI_URL", help="send spans to Jaeger (OTLP/HTTP :4318)")
    demo.add_argument("--alertmanager", metavar="URL", help="also send alerts to Alertmanager")
    demo.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from tracectx_demo.options import DemoOptions
    from tracectx_demo.run import run_demo  # imports every integration

    options = DemoOptions.from_env(
        out=args.out,
        bootstrap_servers=args.bootstrap_servers,
        broker_url=args.broker_url,
        jaeger=args.jaeger,
        alertmanager=args.alertmanager,
    )
    return int(run_demo(options))
