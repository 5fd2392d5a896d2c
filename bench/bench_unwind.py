"""The design notes' recover question: what does capturing an error on a span cost, compared
with a bare ``try/except``, as the stack the error unwinds through gets deeper?

Variants per depth (the error is raised ``depth`` frames below the handler):
  bare try/except; an OTel span with its default exception recording
  (``start_as_current_span``); tracectx ``traced`` on a TRANSIENT error (classify, error id,
  origin, attributes; no stack, per the kind's policy); tracectx on an UNKNOWN error (stack
  formatted, like OTel).
Variants run interleaved (bench.harness.interleave), process CPU time; ratios are the median
of per-round ratios against the bare try/except.

    python -m bench.bench_unwind [--rounds 30]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from bench.harness import Variant, interleave, report, rows_of
from tracectx import ErrorKind, new_error, traced

DEPTHS = (1, 10, 50)
OPS = 1_000


def dive(depth: int) -> None:
    if depth <= 1:
        raise new_error(ErrorKind.TRANSIENT, "timeout", code="T1")
    dive(depth - 1)


def dive_unknown(depth: int) -> None:
    if depth <= 1:
        raise ValueError("unexpected")
    dive_unknown(depth - 1)


def runner(raise_at: Callable[[int], None], depth: int, wrap: Callable[[], Any] | None):  # type: ignore[no-untyped-def]
    """An op: raise `depth` frames down, inside `wrap()` (a span) if given, catch at the top."""

    def run(n: int) -> None:
        for _ in range(n):
            try:
                if wrap is None:
                    raise_at(depth)
                else:
                    with wrap():
                        raise_at(depth)
            except Exception:
                pass

    return run


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    trace.set_tracer_provider(TracerProvider())  # real SDK, spans recorded, not exported
    rows = []
    tracer = trace.get_tracer("bench")
    for depth in DEPTHS:
        variants = [
            Variant("bare try/except", runner(dive, depth, None)),
            Variant("otel span", runner(dive, depth, lambda: tracer.start_as_current_span("op"))),
            Variant("tracectx traced", runner(dive, depth, lambda: traced("op"))),
            Variant("tracectx, UNKNOWN+stack", runner(dive_unknown, depth, lambda: traced("op"))),
        ]
        rows += rows_of(f"raise at depth {depth}", interleave(variants, OPS, rounds=args.rounds))
    report("unwind", rows, baseline="bare try/except")


if __name__ == "__main__":
    main()
