"""`tracectx stream` in production faults, against real servers: the broker stopped and restarted
under load (tansu on S3 storage served by moto, so its data survives), output the broker never
acknowledged, a stage that stalls, re-delivered traces written back, and hostile records on every
topic an instance reads."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaProducer
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

from tests.stream.test_stream_kafka import (
    ACCOUNTS,
    ROOT,
    OtlpReceiver,
    Webhook,
    absorbed,
    collect,
    firing_starts,
    make_traces,
    produce_split,
    read_paths,
    settings_for,
    stop_instances,
)
from tracectx_demo.embedded import free_port, redis_server
from tracectx_stream import SpanStream, StreamSettings
from tracectx_stream.writeback import PathWriter

pytestmark = pytest.mark.integration


def wait_until(what: Callable[[], Any], timeout: float, step: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = what()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(step)


def produce_keyed(bootstrap: str, topic: str, traces: list[list[Any]]) -> None:
    """Each trace as one OTLP protobuf record keyed by trace id (the Collector's
    ``partition_traces_by_id``)."""
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    for members in traces:
        key = format(members[0].context.trace_id, "032x").encode()
        producer.send(topic, key=key, value=encode_spans(members).SerializeToString())
    producer.flush()
    producer.close(timeout=10)


def run_in_thread(stream: SpanStream) -> threading.Thread:
    errors: list[BaseException] = []

    def target() -> None:
        try:
            stream.run()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.errors = errors  # type: ignore[attr-defined]
    thread.start()
    return thread


def test_a_re_delivered_trace_writes_back_the_same_span_ids(spans, bootstrap, make_topic):
    """Two runs over the same input (a restart that re-reads): the receiver sees the same trace
    and span ids, names and times twice — never new ones."""
    prefix = f"w{uuid.uuid4().hex[:6]}"
    topic = make_topic(f"{prefix}.otlp", partitions=2)
    traces, keys = make_traces(spans, 5)
    produce_keyed(bootstrap, topic, traces)
    receiver = OtlpReceiver()
    runs: list[list[tuple[Any, ...]]] = []
    try:
        for run in range(2):
            settings = settings_for(
                bootstrap, make_topic, f"{prefix}{run}", topics=(topic,),
                partitioned_by_trace=True, idle_exit_s=10.0, grace_s=0.5,
            )  # fmt: skip
            before = len(receiver.spans())
            stream = SpanStream(settings, [PathWriter.over_http(receiver.endpoint)])
            stream.handlers[0].stats = stream.stats  # type: ignore[attr-defined]
            stream.run()
            assert stream.stats.paths_out == len(keys) and stream.stats.writeback_errors == 0
            rows = [
                (s.trace_id, s.span_id, s.parent_span_id, s.name, s.start_time_unix_nano,
                 s.end_time_unix_nano)
                for _, s in receiver.spans()[before:]
            ]  # fmt: skip
            runs.append(sorted(rows))
    finally:
        receiver.server.shutdown()
    assert runs[0] and runs[0] == runs[1]
    assert len({row[0] for row in runs[0]}) == len(keys)  # one written-back trace per path


def test_refused_output_is_counted_and_its_input_read_again(spans, s3_broker, make_topic):
    """The broker stops answering (SIGSTOP) just as the first path is produced: the produce
    fails past the delivery timeout, is counted, its trace's offset is not committed, and once
    the broker answers again the trace is read again and its path produced (were the offset
    committed, the path would be lost)."""
    from kafka.admin import KafkaAdminClient, NewTopic

    bootstrap = s3_broker.address
    prefix = f"f{uuid.uuid4().hex[:6]}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(f"{prefix}.{t}", 1, 1) for t in ("otlp", "paths", "events")])
    admin.close()
    traces, keys = make_traces(spans, 4)
    produce_keyed(bootstrap, f"{prefix}.otlp", traces)
    settings = StreamSettings(
        bootstrap_servers=bootstrap, topics=(f"{prefix}.otlp",), group=f"{prefix}-g",
        partitioned_by_trace=True, paths_topic=f"{prefix}.paths",
        alerts_topic=f"{prefix}.events", wait_s=4.0, grace_s=0.5, commit_interval_s=0.5,
        stall_s=3.0, give_up_s=300.0,
        producer_options={"delivery.timeout.ms": 4000, "request.timeout.ms": 1500,
                          "linger.ms": 200},
    )  # fmt: skip
    stopped = threading.Event()

    def stop_the_broker(record: dict[str, Any]) -> None:  # the path is queued, not yet sent
        if not stopped.is_set():
            stopped.set()
            s3_broker.proc.send_signal(signal.SIGSTOP)  # type: ignore[union-attr]

    stream = SpanStream(settings, [stop_the_broker])
    thread = run_in_thread(stream)
    try:
        assert wait_until(stopped.is_set, 60), stream.stats.as_dict()
        refused = wait_until(lambda: stream.stats.produce_errors.get(settings.paths_topic), 60)
        assert refused, json.dumps(stream.stats.as_dict(), default=str)
        assert wait_until(lambda: stream.stats.redone_traces, 30)
        assert wait_until(lambda: not stream.healthy()[0], 30), stream.healthy()
        assert thread.is_alive()
        s3_broker.proc.send_signal(signal.SIGCONT)  # type: ignore[union-attr]
        paths = read_paths(bootstrap, str(settings.paths_topic))
        try:
            got = collect(paths, keys, timeout=120, complete=absorbed)
        finally:
            paths.close()
        assert {r["key"] for r in got} == keys, stream.stats.as_dict()
        assert wait_until(lambda: stream.healthy()[0], 60), stream.healthy()
    finally:
        s3_broker.proc.send_signal(signal.SIGCONT)  # type: ignore[union-attr]
        stream.stop()
        thread.join(60)
    assert not thread.errors  # type: ignore[attr-defined]
    assert stream.stats.produce_errors[str(settings.paths_topic)] >= 1
    assert stream.health["assemble"].failures >= 1 and stream.health["assemble"].restarts >= 1


def test_a_stalled_stage_fails_liveness_until_it_moves_again(spans, bootstrap, make_topic):
    """A path handler that blocks longer than --stall holds the assembling stage: /healthz's
    check fails while it is stuck, and passes again once it moves."""
    prefix = f"h{uuid.uuid4().hex[:6]}"
    topic = make_topic(f"{prefix}.otlp", partitions=1)
    release = threading.Event()
    settings = settings_for(
        bootstrap, make_topic, prefix, topics=(topic,), partitioned_by_trace=True,
        grace_s=0.5, stall_s=2.0,
    )  # fmt: skip
    stream = SpanStream(settings, [lambda record: release.wait(60)])
    thread = run_in_thread(stream)
    try:
        assert wait_until(lambda: stream.healthy()[0], 30), stream.healthy()
        assert wait_until(lambda: stream.ready()[0], 30), stream.ready()
        traces, _ = make_traces(spans, 1)
        produce_keyed(bootstrap, topic, traces)
        ok_stuck = wait_until(lambda: not stream.healthy()[0], 30)
        assert ok_stuck, stream.healthy()
        assert stream.healthy()[1]["stalled"] == ["assemble"]
        release.set()
        assert wait_until(lambda: stream.healthy()[0], 30), stream.healthy()
    finally:
        release.set()
        stream.stop()
        thread.join(60)


def get(url: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")
    except OSError:
        return 0, {}


def start_instance(settings: StreamSettings, alerts: Path, log: Path, http: int) -> Any:
    argv = [
        sys.executable, "-m", "tracectx", "stream", "--bootstrap-servers",
        settings.bootstrap_servers, "--topic", settings.topics[0], "--group", settings.group,
        "--rekey-topic", settings.rekey_topic, "--paths-topic", str(settings.paths_topic),
        "--alerts-topic", settings.alerts_topic, "--wait", "1", "--format", "otlp_proto",
        "--alerts", str(alerts), "--http", f"127.0.0.1:{http}", "--stall", "10",
    ]  # fmt: skip
    return subprocess.Popen(argv, stdout=log.open("wb"), stderr=subprocess.STDOUT, cwd=ROOT)


@pytest.mark.timeout(480)
def test_broker_stopped_20s_under_load_every_stage_survives(spans, s3_broker, tmp_path):
    """Two instances, re-keying and alerting through Redis windows; the broker is stopped for
    20 s and restarted. Both instances keep every stage (spans_in grows on both after the
    restart), answer /healthz 200 once recovered, and no path and no alert is lost."""
    from kafka.admin import KafkaAdminClient, NewTopic

    bootstrap = s3_broker.address
    prefix = f"b{uuid.uuid4().hex[:6]}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics(
        [NewTopic(f"{prefix}.{t}", 4, 1) for t in ("otlp", "spans-by-trace", "events")]
        + [NewTopic(f"{prefix}.paths", 1, 1)]
    )
    admin.close()
    settings = StreamSettings(
        bootstrap_servers=bootstrap, topics=(f"{prefix}.otlp",), group=f"{prefix}-g",
        rekey_topic=f"{prefix}.spans-by-trace", paths_topic=f"{prefix}.paths",
        alerts_topic=f"{prefix}.events",
    )  # fmt: skip
    redis = redis_server().start()
    hook = Webhook()
    alerts_yaml = tmp_path / "alerts.yaml"
    alerts_yaml.write_text(
        f"redis: redis://127.0.0.1:{redis.port}/0\n"
        "resend_interval: 2\n"
        f"sinks:\n  hook: {{type: webhook, url: '{hook.url}'}}\n"
        "alert_rules:\n"
        "  - {name: burst, resource: '*', kinds: [BUSINESS], threshold: 2, window: 600,\n"
        "     group_by: [account_id], actions: [hook]}\n"
    )
    first, first_keys = make_traces(spans, 24)
    second, second_keys = make_traces(spans, 24)
    ports = [free_port(), free_port()]
    logs = [tmp_path / f"i{n}.log" for n in range(2)]
    instances = [start_instance(settings, alerts_yaml, logs[n], ports[n]) for n in range(2)]

    def stats(n: int) -> dict[str, Any]:
        return get(f"http://127.0.0.1:{ports[n]}/stats")[1]

    def tails() -> list[str]:
        return [log.read_text(errors="replace")[-2500:] for log in logs]

    try:
        assert wait_until(
            lambda: all(get(f"http://127.0.0.1:{p}/readyz")[0] == 200 for p in ports), 90
        ), tails()
        produce_split(bootstrap, f"{prefix}.otlp", first)
        paths = read_paths(bootstrap, str(settings.paths_topic))
        got = collect(paths, first_keys, timeout=120, complete=absorbed)
        paths.close()
        assert {r["key"] for r in got} >= first_keys, tails()
        before = [stats(n).get("spans_in", 0) for n in range(2)]

        s3_broker.stop()
        time.sleep(20)
        assert all(p.poll() is None for p in instances), tails()  # nobody exited
        s3_broker.start()

        assert wait_until(
            lambda: all(get(f"http://127.0.0.1:{p}/healthz")[0] == 200 for p in ports), 120
        ), ([get(f"http://127.0.0.1:{p}/healthz") for p in ports], tails())
        produce_split(bootstrap, f"{prefix}.otlp", second)
        paths = read_paths(bootstrap, str(settings.paths_topic))
        got += collect(paths, first_keys | second_keys, 180, absorbed, seen=got)
        paths.close()
        assert {r["key"] for r in got} == first_keys | second_keys, tails()
        after = [stats(n).get("spans_in", 0) for n in range(2)]
        assert all(a > b for a, b in zip(after, before, strict=True)), (before, after, tails())
        for n in range(2):
            stages = stats(n)["stages"]
            assert set(stages) == {"assemble", "rekey", "alerts"}, stages
            assert all(s["alive"] for s in stages.values()), stages
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and sorted(firing_starts(hook)) != ACCOUNTS:
            time.sleep(0.5)
    finally:
        stop_instances(instances)
        hook.server.shutdown()
        redis.stop()
    fired = firing_starts(hook)
    assert sorted(fired) == ACCOUNTS, tails()
    assert all(len(starts) == 1 for starts in fired.values()), hook.alerts
    assert [p.returncode for p in instances] == [0, 0], tails()


def test_hostile_records_on_every_topic_are_counted_once_and_skipped(
    spans, bootstrap, make_topic, tmp_path
):
    """An unreadable record and an over-budget one (a gzip bomb) on each topic an instance
    reads — input, re-key, error events — are counted and committed past: the instance keeps
    working (the good trace's path is produced), and a restarted instance does not meet them
    again (no crash loop, each counted once)."""
    import gzip

    from tracectx_stream import build_stream

    prefix = f"p{uuid.uuid4().hex[:6]}"
    topic = make_topic(f"{prefix}.otlp", partitions=1)
    settings = settings_for(bootstrap, make_topic, prefix, topics=(topic,), grace_s=0.5)
    alerts_yaml = tmp_path / "alerts.yaml"
    alerts_yaml.write_text(
        "alert_rules:\n"
        "  - {name: burst, resource: '*', kinds: [BUSINESS], threshold: 100, window: 60,\n"
        "     group_by: [account_id], actions: []}\n"
    )
    bomb = gzip.compress(b"\0" * (20 << 20))  # 20 KB that inflate to 20 MiB: over the ratio
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    hostile = {
        topic: [b"\x00\xffnot spans", bomb],
        settings.rekey_topic: [b'{"v":1,"spans":[{"trace_id":5}]}', bomb],
        settings.alerts_topic: [b'{"rule":"burst","event":{"error_id":[]}}', b"\xc1"],
    }
    for name, values in hostile.items():
        for value in values:
            producer.send(name, key=b"k", value=value)
    producer.flush()
    producer.close()
    traces, keys = make_traces(spans, 1)
    produce_split(bootstrap, topic, traces)
    counted = []
    for run in range(2):  # the second run is the restarted instance
        found: list[dict[str, Any]] = []
        stream = build_stream(settings, alerts=alerts_yaml, handlers=[found.append])
        thread = run_in_thread(stream)
        try:
            if run == 0:  # every group has read everything: the good path, the six poisons
                assert wait_until(
                    lambda st=stream, f=found: st.stats.poison_records == 6 and len(f) == 1, 120
                ), stream.stats.as_dict()
            else:  # joined and caught up with nothing to read (all committed past)
                assert wait_until(lambda st=stream: st.ready()[0], 60), stream.ready()
                wait_until(lambda: False, 5)
        finally:
            stream.stop()
            thread.join(60)
        assert not thread.errors  # type: ignore[attr-defined]
        stages = stream.stats.as_dict()["stages"]
        assert set(stages) == {"assemble", "rekey", "alerts"}
        assert all(s["failures"] == 0 for s in stages.values()), stages
        counted.append(stream.stats.poison_records)
        if run == 0:
            assert {r["key"] for r in found} == keys
    assert counted == [6, 0], (counted, stream.stats.problems)
