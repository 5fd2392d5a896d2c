"""Alert engine throughput and the error-stream processor's cost on spans without errors.

- rule evaluation: `AlertEngine.observe` on pre-built events (the Sentinel count rule grouped by
  1,000 accounts + the weighted rule), in-memory windows, one thread — events per second;
- processor: `ErrorStreamProcessor.on_end` on an ended non-error SDK span, and the span's
  start+end with and without the processor registered (the SDK is the baseline here: there is
  no OTel contrib equivalent).

    python -m bench.bench_alerting
"""

from __future__ import annotations

import time

from opentelemetry.sdk.trace import TracerProvider

from bench.harness import per_op, report
from tracectx.alerting import AlertEngine, ErrorEvent, ErrorStreamProcessor, Rule

EVENTS = 200_000


def events(n: int) -> list[ErrorEvent]:
    now = time.time()
    kinds = ("BUSINESS", "BUSINESS", "BUSINESS", "TRANSIENT")
    return [
        ErrorEvent(
            error_id=f"{i:016x}",
            kind=kinds[i % 4],
            code="E42",
            error_type="app.Declined",
            role="origin",
            resources=("payment",),
            trace_id="a" * 32,
            span_id="b" * 16,
            timestamp=now + i * 1e-4,
            metadata={"account_id": f"acc_{i % 1000}"},
        )
        for i in range(n)
    ]


def engine_throughput(weighted: bool) -> float:
    sink: list = []
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
            processor.on_end(span)

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


def main() -> None:
    per_event = engine_throughput(weighted=False)
    both = engine_throughput(weighted=True)
    on_end, bare, with_proc = processor_costs()
    rows = [
        {"case": "rule evaluation / event", "variant": "sentinel rule", "us_per_op": per_event},
        {"case": "rule evaluation / event", "variant": "sentinel + weighted", "us_per_op": both},
        {"case": "span start+end, no error", "variant": "sdk", "us_per_op": bare},
        {
            "case": "span start+end, no error",
            "variant": "sdk + error stream",
            "us_per_op": with_proc,
        },
        {"case": "on_end, no error", "variant": "error stream", "us_per_op": on_end},
    ]
    report("alerting", rows, baseline="sdk")
    print(
        f"\nrule evaluation, Sentinel rule: {1e6 / per_event:,.0f} events/s on one thread "
        f"(target >= 200k); with the weighted rule too: {1e6 / both:,.0f}/s"
    )
    print(f"processor on a non-error span: {on_end * 1000:.0f} ns (target <= 2 µs)")


if __name__ == "__main__":
    main()
