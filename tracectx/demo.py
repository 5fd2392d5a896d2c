"""``tracectx demo``: a small real pipeline with an error of each kind, shown as a tree."""

from __future__ import annotations

from pathlib import Path

from opentelemetry.sdk.trace import ReadableSpan

from tracectx import semconv
from tracectx.context import bind
from tracectx.errors import new_error
from tracectx.kinds import ErrorKind, set_fatal_hook
from tracectx.recording import handled, traced
from tracectx.retry import retry_transient
from tracectx.testing import capture_spans

__all__ = ["run_demo"]


def _checkout() -> None:
    calls = {"n": 0}

    @retry_transient(attempts=3, initial=0.01, maximum=0.05)
    @traced("inventory.reserve")
    def reserve() -> str:
        calls["n"] += 1
        if calls["n"] < 2:
            raise TimeoutError("inventory service timed out")
        return "reserved"

    with traced("POST /checkout"):
        bind(account_id="acc_123", currency="CNY")
        reserve()
        with traced("payment.authorize"):
            try:
                with traced("ledger.debit"):
                    raise new_error(ErrorKind.BUSINESS, "insufficient balance", code="E_FUNDS")
            except Exception as exc:
                handled(exc)
        with traced("report.render"):
            try:
                with traced("template.load"):
                    raise KeyError("template missing")  # an UNKNOWN error
            except KeyError:
                pass
        with traced("db.connect"):
            raise new_error(ErrorKind.FATAL, "config unreadable", code="E_CONF")


def _print_tree(spans: list[ReadableSpan]) -> None:
    by_parent: dict[int | None, list[ReadableSpan]] = {}
    for span in spans:
        parent = span.parent.span_id if span.parent else None
        by_parent.setdefault(parent, []).append(span)

    def walk(parent: int | None, depth: int) -> None:
        for span in sorted(by_parent.get(parent, []), key=lambda s: s.start_time or 0):
            attrs = span.attributes or {}
            role = attrs.get(semconv.ATTR_ROLE)
            note = ""
            if role:
                note = (
                    f"  [{role}] {attrs.get(semconv.ATTR_KIND, '')} "
                    f"{attrs.get(semconv.ATTR_CODE, '')} id={attrs.get(semconv.ATTR_ID)}"
                )
            print(f"{'  ' * depth}- {span.name}{note}")
            walk(span.context.span_id, depth + 1)

    walk(None, 0)


def run_demo(out_dir: str = "tracectx-demo") -> int:
    """Run the demo, print the propagation tree; returns a process exit code."""
    set_fatal_hook()  # the demo's FATAL error is staged: don't log a CRITICAL stack for it
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    with capture_spans() as exporter:
        try:
            _checkout()
        except Exception as exc:
            print(f"request failed as expected: {exc!r}")
    _print_tree(list(exporter.get_finished_spans()))
    return 0
