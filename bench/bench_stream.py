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

Wall time on a shared machine is noisy; ``--count VARIANT`` instead runs one variant
``--passes`` times (after one warm-up pass) inside a single `functools.reduce` call and times
nothing, so an instruction counter can take exactly that part:

    valgrind --tool=callgrind --collect-atstart=no --toggle-collect=functools_reduce \
        python -m bench.bench_stream --count stream --records 60 --passes 3

Instructions per span = the collected Ir / (passes x records x 100). The records are made by
the SDK each run (random ids and times), which moves the count by well under 1%.

``--scaling`` instead measures whole ``tracectx stream`` processes against a real broker (tansu,
embedded): for 1 and then 2 instances in one consumer group on a fresh 4-partition topic keyed
by trace id (``--partitioned-by-trace``, one record per trace as the Collector's
``partition_traces_by_id`` writes), it waits until the group owns every partition, produces
`--traces` traces of the same shape as fast as it can, and takes the wall time until every
trace's error path is on the paths topic. It prints spans/s for each and the 2/1 ratio (2.0 =
linear). Wall time, so it includes the producer and the paths reader (in this process) and one
``--wait`` of quiet before the last trace is analysed: run it on a machine with a core per
instance and enough traces for that second not to matter.

    python -m bench.bench_stream --scaling [--traces 20000] [--partitions 4]
"""

from __future__ import annotations

import argparse
import functools
import json
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
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


_memory: InMemorySpanExporter | None = None


def _recorder() -> InMemorySpanExporter:
    global _memory
    if _memory is None:
        _memory = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(_memory))
        trace.set_tracer_provider(provider)
    return _memory


def _one_trace(t: int) -> None:
    """A request: SPANS_PER_TRACE - 3 queries, then a payment whose gateway times out (an
    error raised two spans down, handled at the top)."""
    with traced(f"GET /orders/{t}"):
        for i in range(SPANS_PER_TRACE - 3):
            with traced(f"db.query {i}"):
                pass
        try:
            with traced("payments.charge"), traced("gateway.call"):
                raise new_error(ErrorKind.TRANSIENT, "timeout", code="E_GW", order=t)
        except Exception as exc:
            mark_handled(exc)


def make_records(n: int) -> list[bytes]:
    """`n` records of TRACES_PER_RECORD traces each."""
    memory = _recorder()
    records = []
    for _ in range(n):
        for t in range(TRACES_PER_RECORD):
            _one_trace(t)
        records.append(encode_spans(memory.get_finished_spans()).SerializeToString())
        memory.clear()
    return records


def make_trace_records(n: int) -> list[tuple[bytes, bytes]]:
    """`n` records of one trace each, as (trace id key, value)."""
    memory = _recorder()
    out = []
    for t in range(n):
        _one_trace(t)
        spans = memory.get_finished_spans()
        key = f"{spans[0].context.trace_id:032x}".encode()
        out.append((key, encode_spans(spans).SerializeToString()))
        memory.clear()
    return out


# -- --scaling: whole instances against a real broker ---------------------------------------

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stats(port: int) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats", timeout=2) as answer:
            return json.loads(answer.read())  # type: ignore[no-any-return]
    except OSError:
        return None


def _run_instances(
    bootstrap: str, count: int, records: list[tuple[bytes, bytes]], partitions: int, log_dir: Path
) -> float:
    """Wall seconds from the first record produced to the last error path read, with `count`
    instances already owning all `partitions`."""
    from kafka import KafkaConsumer, KafkaProducer
    from kafka.admin import KafkaAdminClient, NewTopic

    prefix = f"scale{count}-{uuid.uuid4().hex[:6]}"
    topic, paths_topic = f"{prefix}.otlp", f"{prefix}.paths"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics(
        [
            NewTopic(topic, num_partitions=partitions, replication_factor=1),
            NewTopic(paths_topic, num_partitions=partitions, replication_factor=1),
        ]
    )
    admin.close()
    ports = [_free_port() for _ in range(count)]
    procs = []
    for n, port in enumerate(ports):
        argv = [
            sys.executable, "-m", "tracectx", "stream", "--bootstrap-servers", bootstrap,
            "--topic", topic, "--group", prefix, "--partitioned-by-trace",
            "--format", "otlp_proto", "--paths-topic", paths_topic,
            "--alerts-topic", f"{prefix}.alerts", "--wait", "1",
            "--http", f"127.0.0.1:{port}",
        ]  # fmt: skip
        log = (log_dir / f"{prefix}-{n}.log").open("wb")
        procs.append(subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT))
    from kafka import TopicPartition

    paths = KafkaConsumer(
        bootstrap_servers=bootstrap, auto_offset_reset="earliest", consumer_timeout_ms=200
    )
    paths.assign([TopicPartition(paths_topic, p) for p in range(partitions)])  # no group join
    try:
        deadline = time.monotonic() + 120
        while True:  # every instance owns partitions, and together all of them
            owned = [(_stats(p) or {}).get("assigned", []) for p in ports]
            if all(owned) and sum(len(o) for o in owned) == partitions:
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"the group did not settle: {owned} (logs in {log_dir})")
            time.sleep(0.5)
        producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks=1)
        started = time.perf_counter()
        for key, value in records:
            producer.send(topic, key=key, value=value)
        producer.flush()
        produced = time.perf_counter() - started
        keys: set[bytes] = set()
        deadline = time.monotonic() + 600
        while len(keys) < len(records):
            for message in paths:
                keys.add(message.key)
                if len(keys) >= len(records):
                    break
            if time.monotonic() > deadline:
                raise SystemExit(f"{len(keys)} of {len(records)} paths (logs in {log_dir})")
        wall = time.perf_counter() - started
        print(f"  ({count}: produced in {produced:.2f} s, last path at {wall:.2f} s)")
        producer.close()
    finally:
        paths.close()
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
    return wall


def scaling(traces: int, partitions: int) -> None:
    """1 vs 2 `tracectx stream` instances on a `partitions`-partition topic: spans/s, wall."""
    import tempfile

    from tracectx_demo.embedded import tansu_broker

    records = make_trace_records(traces)
    spans = traces * SPANS_PER_TRACE
    log_dir = Path(tempfile.mkdtemp(prefix="bench-stream-"))
    rates: dict[int, float] = {}
    with tansu_broker() as broker:
        for count in (1, 2):
            wall = _run_instances(broker.address, count, records, partitions, log_dir)
            rates[count] = spans / wall
            print(
                f"  {count} instance{'s' if count > 1 else ' '}: {spans:,} spans in {wall:6.2f} s "
                f"wall = {rates[count]:>9,.0f} spans/s"
            )
    print(f"  2/1 ratio: {rates[2] / rates[1]:.2f} (2.00 = linear)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--scaling", action="store_true", help="1 vs 2 instances on a broker")
    parser.add_argument(
        "--count", choices=("floor", "decode", "stream"), help="run one variant, untimed"
    )
    parser.add_argument("--passes", type=int, default=3, help="passes for --count")
    parser.add_argument("--traces", type=int, default=20_000, help="traces for --scaling")
    parser.add_argument("--partitions", type=int, default=4, help="partitions for --scaling")
    args = parser.parse_args()
    if args.scaling:
        scaling(args.traces, args.partitions)
        return
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

    if args.count:
        run = {"floor": floor, "decode": decode, "stream": stream}[args.count]
        run(0)  # warm-up: imports and caches outside the counted call
        functools.reduce(lambda _, n: run(n), range(args.passes), None)  # the counted part
        print(f"{args.count}: {args.passes} passes x {spans:,} spans")
        return
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
