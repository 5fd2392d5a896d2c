"""`tracectx stream` per-instance cost: decode + assemble + analyse vs the floor, interleaved.

The floor is what any consumer of the span topic pays: parse each OTLP protobuf record with
`opentelemetry-proto` (the Kafka fetch itself is the same for every variant and left out, so
the ratio isolates what tracectx adds). Variants, on the same records (each a
`ExportTraceServiceRequest` of 10 traces x 10 spans, one error path per trace, as the SDK's
OTLP encoder writes them):

- floor: `TracesData.ParseFromString`;
- decode: tracectx's record decoder (protobuf -> the visualiser's span model);
- stream: decode + `TraceAssembler` + the visualiser's analysis + path records.

    python -m bench.bench_stream [--records 200] [--rounds 15]
"""

from __future__ import annotations

import argparse
from typing import Any

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from bench.harness import Variant, interleave, report, rows_of
from tracectx import ErrorKind, mark_handled, new_error, traced
from tracectx.viz.analysis import analyse
from tracectx.viz.model import SpanSet
from tracectx_stream.assembler import TraceAssembler
from tracectx_stream.decode import decode_record
from tracectx_stream.paths import path_records

TRACES_PER_RECORD, SPANS_PER_TRACE = 10, 10


def make_records(n: int) -> list[bytes]:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    trace.set_tracer_provider(provider)
    records = []
    for _ in range(n):
        for t in range(TRACES_PER_RECORD):
            with traced(f"GET /orders/{t}"):
                for i in range(SPANS_PER_TRACE - 3):
                    with traced(f"db.query {i}"):
                        pass
                try:
                    with traced("payments.charge"), traced("gateway.call"):
                        raise new_error(ErrorKind.TRANSIENT, "timeout", code="E_GW", order=t)
                except Exception as exc:
                    mark_handled(exc)
        records.append(encode_spans(memory.get_finished_spans()).SerializeToString())
        memory.clear()
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    records = make_records(args.records)
    spans = args.records * TRACES_PER_RECORD * SPANS_PER_TRACE

    def floor(n: int) -> None:
        for raw in records:
            TracesData.FromString(raw)

    def decode(n: int) -> None:
        for raw in records:
            decode_record(raw, "otlp_proto")

    def stream(n: int) -> None:
        asm = TraceAssembler(wait_s=1.0, grace_s=0.0)
        out: list[dict[str, Any]] = []
        for i, raw in enumerate(records):
            asm.add(decode_record(raw, "otlp_proto").spans, now=float(i))
            for buf in asm.due(now=float(i)):
                for a in analyse(SpanSet(buf.spans)):
                    out.extend(path_records(a))
            asm.final(now=float(i))
        for buf in asm.due(now=1e9):
            for a in analyse(SpanSet(buf.spans)):
                out.extend(path_records(a))

    variants = [
        Variant("floor (protobuf parse)", floor),
        Variant("decode", decode),
        Variant("stream", stream),
    ]
    outcomes = interleave(variants, spans, rounds=args.rounds, warmup_rounds=1)
    rows = rows_of("per span", outcomes)
    for row in rows:
        row["spans_per_s"] = round(1e6 / row["us_per_op"])
    report("stream", rows, baseline="floor (protobuf parse)")
    for row in rows:
        print(f"  {row['variant']:<24} {row['spans_per_s']:>10,} spans/s (CPU, one core)")


if __name__ == "__main__":
    main()
