"""`tracectx stream` end to end: spans per CPU-second of the stream processes, by input shape.

What an operator plans capacity with. Spans are produced up front to a real broker (tansu,
embedded) in one of two shapes:

- ``unkeyed``: records of 20 traces x 10 spans with no key, as rotel writes them (any
  partition): the instances re-key every span through ``tracectx.spans-by-trace``;
- ``keyed``: one record per trace keyed by trace id, as the Collector's
  ``partition_traces_by_id`` writes them (``--partitioned-by-trace``: no re-key stage).

Then 1 (or 2) ``tracectx stream`` instances in one group start, read everything and exit when
idle; the run ends when every trace's error path is on the paths topic. Each instance reports
its own CPU time (``time.process_time``) from the first input record read to the last path
produced (start-up, the broker and the producer excluded) and its stages' thread CPU. The
result is spans / sum of those CPU seconds, and the split by stage: decode (OTLP protobuf
records into spans), re-key (fetch, encode and produce of the batches), assemble (fetch, decode
of batches, assembling), analyse, paths out (encoding and producing the error paths), and the
rest (Kafka client I/O threads: the consumers' network threads, librdkafka's producer threads,
heartbeats).

    python -m bench.bench_stream_e2e [--spans 400000] [--shapes keyed,unkeyed] [--instances 1,2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from bench.bench_stream import SPANS_PER_TRACE, _one_trace, _recorder, _stats

ROOT = Path(__file__).resolve().parent.parent
TRACES_PER_UNKEYED = 20
TEMPLATE_TRACES = 200


def _template() -> list[ExportTraceServiceRequest]:
    """TEMPLATE_TRACES traces made by the SDK, one request each (copied with new trace ids)."""
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    memory = _recorder()
    out = []
    for t in range(TEMPLATE_TRACES):
        _one_trace(t)
        out.append(encode_spans(memory.get_finished_spans()))
        memory.clear()
    return out


def _copy(template: ExportTraceServiceRequest) -> tuple[bytes, ExportTraceServiceRequest]:
    """The template trace with a fresh trace id: (trace id, request)."""
    request = ExportTraceServiceRequest()
    request.CopyFrom(template)
    trace_id = os.urandom(16)
    for resource in request.resource_spans:
        for scope in resource.scope_spans:
            for span in scope.spans:
                span.trace_id = trace_id
    return trace_id, request


def make_input(shape: str, traces: int) -> list[tuple[bytes | None, bytes]]:
    """(key, value) records holding `traces` traces in `shape`."""
    templates = _template()
    records: list[tuple[bytes | None, bytes]] = []
    pending = ExportTraceServiceRequest()
    for t in range(traces):
        trace_id, request = _copy(templates[t % len(templates)])
        if shape == "keyed":
            records.append((trace_id.hex().encode(), request.SerializeToString()))
            continue
        pending.resource_spans.extend(request.resource_spans)
        if (t + 1) % TRACES_PER_UNKEYED == 0:
            records.append((None, pending.SerializeToString()))
            pending = ExportTraceServiceRequest()
    if len(pending.resource_spans):
        records.append((None, pending.SerializeToString()))
    return records


def run(bootstrap: str, shape: str, count: int, records: list[Any], traces: int) -> dict[str, Any]:
    """One measured run: `count` instances over `records`; the instances' reports summed."""
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.admin import KafkaAdminClient, NewTopic

    prefix = f"e2e-{shape}-{count}-{uuid.uuid4().hex[:6]}"
    partitions = 4
    topics = {t: f"{prefix}.{t}" for t in ("otlp", "rekey", "paths", "events")}
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(t, partitions, 1) for t in topics.values()])
    admin.close()
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, acks=1)
    for key, value in records:  # up front: the instances find a full topic
        producer.send(topics["otlp"], key=key, value=value)
    producer.flush()
    producer.close()
    log_dir = Path(tempfile.mkdtemp(prefix="bench-e2e-"))
    logs = [log_dir / f"{n}.log" for n in range(count)]
    ports = [_free_port() for _ in range(count)]
    procs = []
    for n in range(count):
        argv = [
            sys.executable, "-m", "tracectx", "stream", "--bootstrap-servers", bootstrap,
            "--topic", topics["otlp"], "--group", prefix, "--format", "otlp_proto",
            "--rekey-topic", topics["rekey"], "--paths-topic", topics["paths"],
            "--alerts-topic", topics["events"], "--wait", "1", "--grace", "2",
            "--idle-exit", "8", "--http", f"127.0.0.1:{ports[n]}",
        ] + (["--partitioned-by-trace"] if shape == "keyed" else [])  # fmt: skip
        procs.append(
            subprocess.Popen(argv, stdout=logs[n].open("wb"), stderr=subprocess.STDOUT, cwd=ROOT)
        )
    paths = KafkaConsumer(
        bootstrap_servers=bootstrap, auto_offset_reset="earliest", consumer_timeout_ms=500
    )
    paths.assign([TopicPartition(topics["paths"], p) for p in range(partitions)])
    keys: set[bytes] = set()
    started = time.monotonic()
    try:
        while len(keys) < traces and time.monotonic() - started < 1800:
            keys.update(m.key for m in paths)
            if all(p.poll() is not None for p in procs):
                keys.update(m.key for m in paths)
                break
    finally:
        paths.close()
        for proc in procs:
            try:
                proc.wait(120)
            except subprocess.TimeoutExpired:
                proc.terminate()
                proc.wait(30)
    reports = [_final_stats(log) for log in logs]
    if len(keys) < traces or any(r is None for r in reports):
        raise SystemExit(f"{len(keys)} of {traces} paths; logs in {log_dir}")
    out: dict[str, Any] = {"shape": shape, "instances": count, "traces": traces}
    out["spans"] = sum(r["spans_in"] for r in reports)  # type: ignore[index]
    out["cpu_s"] = sum(r["cpu_last_output"] - r["cpu_first_input"] for r in reports)  # type: ignore[index]
    split = {"decode": 0.0, "rekey": 0.0, "assemble": 0.0, "analyse": 0.0, "paths out": 0.0}
    for r in reports:
        stages = r["stages"]  # type: ignore[index]
        decode, analysed, out_s = r["decode_seconds"], r["analyse_seconds"], r["output_seconds"]  # type: ignore[index]
        split["decode"] += decode
        if "rekey" in stages:  # the input is decoded there
            split["rekey"] += stages["rekey"]["cpu_s"] - decode
            split["assemble"] += stages["assemble"]["cpu_s"] - analysed - out_s
        else:
            split["assemble"] += stages["assemble"]["cpu_s"] - decode - analysed - out_s
        split["analyse"] += analysed
        split["paths out"] += out_s
    split["kafka I/O threads, rest"] = max(out["cpu_s"] - sum(split.values()), 0.0)
    out["split_cpu_s"] = {k: round(v, 2) for k, v in split.items()}
    out["spans_per_cpu_s"] = round(out["spans"] / out["cpu_s"])
    return out


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _final_stats(log: Path) -> dict[str, Any] | None:
    """The stats JSON an instance prints on stderr as it exits."""
    for line in reversed(log.read_text(errors="replace").splitlines()):
        if line.startswith("{"):
            try:
                return json.loads(line)  # type: ignore[no-any-return]
            except ValueError:
                return None
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=400_000)
    parser.add_argument("--shapes", default="keyed,unkeyed")
    parser.add_argument("--instances", default="1,2")
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/stream_e2e.json")
    args = parser.parse_args()
    from tracectx_demo.embedded import tansu_broker

    traces = args.spans // SPANS_PER_TRACE
    results = []
    with tansu_broker() as broker:
        for shape in args.shapes.split(","):
            records = make_input(shape, traces)
            for count in (int(c) for c in args.instances.split(",")):
                result = run(broker.address, shape, count, records, traces)
                results.append(result)
                print(
                    f"{shape:8} {count} instance(s): {result['spans']:,} spans, "
                    f"{result['cpu_s']:.1f} CPU-s = {result['spans_per_cpu_s']:,} spans/CPU-s; "
                    f"split {result['split_cpu_s']}",
                    flush=True,
                )
    args.out.write_text(json.dumps(results, indent=1))
    assert _stats  # the same /stats reader as bench_stream (kept for ad-hoc use)


if __name__ == "__main__":
    main()
