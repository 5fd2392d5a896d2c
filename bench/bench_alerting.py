"""Alert engine throughput and the error-stream processor's cost on spans without errors.

- rule evaluation: `AlertEngine.observe` on pre-built events (the Sentinel count rule grouped by
  1,000 accounts + the weighted rule), in-memory windows, one thread — events per second;
- distinct keys: the Sentinel rule over ``--keys`` distinct accounts (one error each, the
  cardinality-attack shape), by `observe` and by `observe_many` batches; ``--memory`` adds the
  bytes held per group key;
- processor: `ErrorStreamProcessor.on_end` on an ended non-error SDK span, and the span's
  start+end with and without the processor registered (the SDK is the baseline here: there is
  no OTel contrib equivalent).

    python -m bench.bench_alerting [--keys 1000000] [--memory]
"""

from __future__ import annotations

import time
from typing import Any

from opentelemetry.sdk.trace import TracerProvider

from bench.harness import Variant, interleave, per_op, report, rows_of
from tracectx.alerting import AlertEngine, ErrorEvent, ErrorStreamProcessor, Rule

EVENTS = 200_000


def events(n: int, accounts: int = 1000, all_business: bool = False) -> list[ErrorEvent]:
    """`n` error events over `accounts` account ids (3 in 4 BUSINESS, unless `all_business`)."""
    now = time.time()
    kinds = ("BUSINESS",) if all_business else ("BUSINESS", "BUSINESS", "BUSINESS", "TRANSIENT")
    return [
        ErrorEvent(
            error_id=f"{i:016x}",
            kind=kinds[i % len(kinds)],
            code="E42",
            error_type="app.Declined",
            role="origin",
            resources=("payment",),
            trace_id="a" * 32,
            span_id="b" * 16,
            timestamp=now + i * 1e-4,
            metadata={"account_id": f"acc_{i % accounts}"},
        )
        for i in range(n)
    ]


def engine_throughput(weighted: bool) -> float:
    sink: list[Any] = []
    rules = [
        Rule(
            name="payment-business-burst",
            resource="payment",
            kinds=["BUSINESS"],
            threshold=10,
            window=300,
            group_by=["account_id"],
            actions=[sink.append],
        ),
    ]
    if weighted:
        weights = {"FATAL": 8.0, "TRANSIENT": 5.0, "BUSINESS": 1.5}
        rules.append(
            Rule(
                name="high-risk-error-burst",
                error_weights=weights,
                base_threshold=10.0,
                decay_factor=0.95,
                actions=[sink.append],
            )
        )
    batch = events(EVENTS)
    samples = []
    for _ in range(3):
        engine = AlertEngine(rules, default_actions=[sink.append])
        start = time.perf_counter()
        for event in batch:
            engine.observe(event)
        samples.append((time.perf_counter() - start) / EVENTS)
    return min(samples) * 1e6


def processor_costs() -> tuple[float, float, float]:
    plain = TracerProvider()
    with_processor = TracerProvider()
    processor = ErrorStreamProcessor([lambda e: None])
    with_processor.add_span_processor(processor)
    span = plain.get_tracer("b").start_span("ok", attributes={"http.route": "/x"})
    span.end()

    def on_end(n: int) -> None:
        for _ in range(n):
            processor.on_end(span)  # type: ignore[arg-type]  # an ended SDK span is readable

    def spans(provider: TracerProvider):  # type: ignore[no-untyped-def]
        tracer = provider.get_tracer("b")

        def run(n: int) -> None:
            for _ in range(n):
                tracer.start_span("ok").end()

        return run

    return (
        per_op(on_end, 200_000) * 1e6,
        per_op(spans(plain), 50_000) * 1e6,
        per_op(spans(with_processor), 50_000) * 1e6,
    )


def rules_variants(batch: list[ErrorEvent]) -> list[Variant]:
    """1 rule; 100 rules with one matching the events; 100 rules all matching."""
    sink: list[Any] = []

    def rule(name: str, resource: str) -> Rule:
        return Rule(
            name=name,
            resource=resource,
            kinds=["BUSINESS"],
            threshold=10,
            window=300,
            group_by=["account_id"],
            actions=[sink.append],
        )

    one = [rule("r0", "payment")]
    hundred_one = one + [rule(f"r{i}", f"other-{i}") for i in range(1, 100)]
    hundred_all = [rule(f"r{i}", "payment") for i in range(100)]

    def runner(rules: list[Rule]):  # type: ignore[no-untyped-def]
        def run(n: int) -> None:
            engine = AlertEngine(rules, default_actions=[sink.append])
            for event in batch[:n]:
                engine.observe(event)

        return run

    return [
        Variant("1 rule", runner(one)),
        Variant("100 rules, 1 matching", runner(hundred_one)),
        Variant("100 rules, all matching", runner(hundred_all)),
    ]


def _sentinel_engine(n: int) -> AlertEngine:
    """The Sentinel rule with room for `n` groups (twice: the limit is not what is measured)."""
    return AlertEngine(
        [Rule(name="s", resource="payment", kinds=["BUSINESS"], threshold=10, window=300,
              group_by=["account_id"], actions=[lambda a: None])],
        default_actions=[lambda a: None],
        max_groups=2 * n,
    )  # fmt: skip


def distinct_keys_throughput(n: int, batch_size: int = 0) -> tuple[float, float]:
    """Events/s (CPU) with the Sentinel rule over `n` distinct account ids — `observe` per
    event, or `observe_many` per `batch_size` events (as the stream's alert stage feeds it) —
    and the process's peak RSS in MB afterwards (tracemalloc would slow the loop it measures
    several times; see `memory_per_key`)."""
    import resource

    batch = events(n, accounts=n, all_business=True)
    engine = _sentinel_engine(n)
    start = time.process_time()
    if batch_size:
        for i in range(0, n, batch_size):
            engine.observe_many(batch[i : i + batch_size])
    else:
        for event in batch:
            engine.observe(event)
    elapsed = time.process_time() - start
    return n / elapsed, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def memory_per_key(n: int) -> float:
    """Bytes the engine holds per distinct group key after `n` one-off errors (tracemalloc;
    the events themselves are not counted, their ids and times are when a window keeps them)."""
    import gc
    import tracemalloc

    batch = events(n, accounts=n, all_business=True)
    engine = _sentinel_engine(n)
    engine.observe_many(batch[:100])  # lazily built caches
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        engine.observe_many(batch[100:])
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    return grown / (n - 100)


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=500, help="observe_many batch size")
    parser.add_argument(
        "--memory", action="store_true", help="also bytes per group key (tracemalloc; slow)"
    )
    args = parser.parse_args()
    per_event = engine_throughput(weighted=False)
    both = engine_throughput(weighted=True)
    on_end, _bare, _with_proc = processor_costs()
    rows = [
        {"case": "rule evaluation / event", "variant": "sentinel rule", "us_per_op": per_event},
        {"case": "rule evaluation / event", "variant": "sentinel + weighted", "us_per_op": both},
        {"case": "on_end, no error", "variant": "error stream", "us_per_op": on_end},
    ]
    batch = events(20_000)
    rows += rows_of("rules / event", interleave(rules_variants(batch), 2_000, rounds=args.rounds))
    plain, with_processor = TracerProvider(), TracerProvider()
    with_processor.add_span_processor(ErrorStreamProcessor([lambda e: None]))

    def spans(provider: TracerProvider):  # type: ignore[no-untyped-def]
        tracer = provider.get_tracer("b")

        def run(n: int) -> None:
            for _ in range(n):
                tracer.start_span("ok").end()

        return run

    rows += rows_of(
        "span start+end, no error",
        interleave(
            [Variant("sdk", spans(plain)), Variant("sdk + error stream", spans(with_processor))],
            5_000,
            rounds=args.rounds,
        ),
    )
    report("alerting", rows, baseline="1 rule")
    rate, peak = distinct_keys_throughput(args.keys)
    batched, peak = distinct_keys_throughput(args.keys, args.batch)
    print(
        f"\nrule evaluation, Sentinel rule: {1e6 / per_event:,.0f} events/s on one thread; "
        f"with the weighted rule too: {1e6 / both:,.0f}/s"
    )
    print(
        f"{args.keys:,} distinct group keys: {rate:,.0f} events/s (CPU, observe); "
        f"{batched:,.0f} events/s (observe_many, {args.batch} a batch); peak RSS {peak:,.0f} MB"
    )
    if args.memory:
        print(f"memory per group key: {memory_per_key(args.keys):,.0f} bytes (tracemalloc)")
    print(f"processor on a non-error span: {on_end * 1000:.0f} ns (target <= 2 µs)")


if __name__ == "__main__":
    main()
