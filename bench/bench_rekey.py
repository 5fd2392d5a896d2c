"""Instructions per span of the stream's re-key round trip: `encode_trace_batch` (re-key stage)
then `decode_trace_batch` (assembling stage), format v2 (msgpack columns) against v1 (the
earlier format, ``dataclasses.asdict`` + ``json.dumps`` / ``json.loads`` + ``Span(**...)``, kept
here as it was). Nothing is timed; run it under callgrind, which counts only the part inside
`functools.reduce`:

    valgrind --tool=callgrind --collect-atstart=no --toggle-collect=functools_reduce \\
        python -m bench.bench_rekey --format v2 --records 60 --passes 3

Instructions per span = the collected Ir / (passes x records x 100). The spans are the ones
`bench_stream` decodes (10 traces x 10 spans a record, one error path a trace), re-keyed a
trace at a time as the stream does.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from bench.bench_stream import make_records
from tracectx.viz.model import Link, Span, SpanEvent, SpanSet
from tracectx_stream.decode import decode_record, decode_trace_batch, encode_trace_batch


def encode_v1(spans: Iterable[Span]) -> bytes:
    """The v1 encoder as it was before v2."""
    return json.dumps(
        {"v": 1, "spans": [dataclasses.asdict(s) for s in spans]},
        separators=(",", ":"),
        default=str,
    ).encode()


def _span_v1(raw: dict[str, Any]) -> Span:
    events = [SpanEvent(e["name"], dict(e["attributes"])) for e in raw.get("events", [])]
    links = [Link(ln["trace_id"], ln["span_id"]) for ln in raw.get("links", [])]
    fields = {f.name for f in dataclasses.fields(Span)} - {"events", "links"}
    return Span(**{k: v for k, v in raw.items() if k in fields}, events=events, links=links)


def decode_v1(value: bytes) -> SpanSet:
    """The v1 decoder as it was before v2 (no validation)."""
    doc = json.loads(value)
    return SpanSet([_span_v1(s) for s in doc["spans"]])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--format", choices=["v1", "v2"], default="v2")
    parser.add_argument("--records", type=int, default=60)
    parser.add_argument("--passes", type=int, default=3)
    args = parser.parse_args()
    traces: dict[str, list[Span]] = defaultdict(list)
    for raw in make_records(args.records):
        for span in decode_record(raw, "otlp_proto").spans:
            traces[span.trace_id].append(span)
    batches = list(traces.values())
    spans = sum(map(len, batches))
    encode, decode = (
        (encode_v1, decode_v1)
        if args.format == "v1"
        else (
            encode_trace_batch,
            decode_trace_batch,
        )
    )
    sizes = [len(encode(b)) for b in batches]

    def run(_: int) -> None:
        for batch in batches:
            decode(encode(batch))

    run(0)  # warm-up: imports and caches outside the counted call
    functools.reduce(lambda _, n: run(n), range(args.passes), None)  # the counted part
    print(
        f"{args.format}: {args.passes} passes x {spans:,} spans in {len(batches)} batches,"
        f" {sum(sizes) / spans:.0f} bytes/span"
    )


if __name__ == "__main__":
    main()
