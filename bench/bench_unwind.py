"""The design notes' recover question: what does capturing an error on a span cost, compared
with a bare ``try/except``, as the stack the error unwinds through gets deeper?

Variants per depth (the error is raised ``depth`` frames below the handler):
  bare try/except; an OTel span with its default exception recording
  (``start_as_current_span``); tracectx ``traced`` on a TRANSIENT error (classify, error id,
  origin, attributes; no stack, per the kind's policy); tracectx on an UNKNOWN error (stack
  formatted, like OTel).
Ratios are against the bare try/except.

    python -m bench.bench_unwind
"""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from bench.harness import per_op, report
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


def bare(depth: int):  # type: ignore[no-untyped-def]
    def run(n: int) -> None:
        for _ in range(n):
            try:
                dive(depth)
            except Exception:
                pass

    return run


def otel_span(depth: int):  # type: ignore[no-untyped-def]
    tracer = trace.get_tracer("bench")

    def run(n: int) -> None:
        for _ in range(n):
            try:
                with tracer.start_as_current_span("op"):
                    dive(depth)
            except Exception:
                pass

    return run


def tracectx_traced(depth: int):  # type: ignore[no-untyped-def]
    def run(n: int) -> None:
        for _ in range(n):
            try:
                with traced("op"):
                    dive(depth)
            except Exception:
                pass

    return run


def tracectx_unknown(depth: int):  # type: ignore[no-untyped-def]
    def run(n: int) -> None:
        for _ in range(n):
            try:
                with traced("op"):
                    dive_unknown(depth)
            except Exception:
                pass

    return run


def main() -> None:
    trace.set_tracer_provider(TracerProvider())  # real SDK, spans recorded, not exported
    rows = []
    for depth in DEPTHS:
        case = f"raise at depth {depth}"
        for variant, make in (
            ("bare try/except", bare),
            ("otel span", otel_span),
            ("tracectx traced", tracectx_traced),
            ("tracectx, UNKNOWN+stack", tracectx_unknown),
        ):
            rows.append(
                {"case": case, "variant": variant, "us_per_op": per_op(make(depth), OPS) * 1e6}
            )
    report("unwind", rows, baseline="bare try/except")


if __name__ == "__main__":
    main()
