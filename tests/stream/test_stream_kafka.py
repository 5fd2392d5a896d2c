"""`tracectx stream` against a real broker: a real collector (rotel) writing the span topic,
several instances in one consumer group, an instance killed mid-stream, alerts through Redis
windows to a real HTTP webhook, and the write-back to a local OTLP/HTTP receiver."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

from tracectx import ErrorKind, mark_handled, new_error, traced
from tracectx_demo.embedded import free_port, redis_server, wait_for_port
from tracectx_stream import SpanStream, StreamSettings
from tracectx_stream.writeback import PathWriter

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def make_traces(spans: Any, n: int, accounts: int = 6) -> tuple[list[list[Any]], set[str]]:
    """n traces `checkout-i` whose `charge-i` child fails BUSINESS and the root absorbs it.
    Returns each trace's finished SDK spans and the expected path keys."""
    keys = set()
    for i in range(n):
        with traced(f"checkout-{i}") as root:
            try:
                with traced(f"charge-{i}"):
                    raise new_error(
                        ErrorKind.BUSINESS,
                        "declined",
                        code="E_CARD",
                        account_id=f"acc_{i % accounts}",
                    )
            except Exception as exc:
                mark_handled(exc)
                trace_id = format(root.get_span_context().trace_id, "032x")
                keys.add(f"{trace_id}/{exc.error_id}")  # type: ignore[attr-defined]
    by_trace: dict[int, list[Any]] = defaultdict(list)
    for span in spans.get_finished_spans():
        by_trace[span.context.trace_id].append(span)
    spans.clear()
    return list(by_trace.values()), keys


def produce_split(bootstrap: str, topic: str, traces: list[list[Any]]) -> None:
    """Each trace as two OTLP protobuf records with no key (as rotel writes: any partition):
    the child span in one, the root in the other."""
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    for members in traces:
        for part in ([s for s in members if s.parent], [s for s in members if not s.parent]):
            producer.send(topic, value=encode_spans(part).SerializeToString())
    producer.flush()
    producer.close(timeout=10)


def read_paths(bootstrap: str, topic: str) -> Iterator[dict[str, Any]]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    consumer.assign([TopicPartition(topic, 0)])
    try:
        while True:
            for records in consumer.poll(timeout_ms=500).values():
                for record in records:
                    if record.value is not None:  # a tombstone withdraws a path; none expected
                        yield json.loads(record.value)
            yield {}  # a heartbeat, so callers can check their deadline
    finally:
        consumer.close(timeout_ms=5_000)


def collect(
    paths: Iterator[dict[str, Any]],
    want: set[str],
    timeout: float,
    complete: Any = lambda record: True,
    seen: Iterable[dict[str, Any]] = (),
) -> list[dict[str, Any]]:
    """Path records until each key in `want` has one whose latest record is `complete`,
    counting the records an earlier call returned (`seen`): without them, a key that is not
    produced again kept the call waiting for its whole timeout."""
    got: list[dict[str, Any]] = []
    latest: dict[str, dict[str, Any]] = {record["key"]: record for record in seen}
    deadline = time.monotonic() + timeout
    for record in paths:
        if record:
            got.append(record)
            latest[record["key"]] = record
        done = want <= latest.keys() and all(complete(latest[k]) for k in want)
        if done or time.monotonic() > deadline:
            return got
    return got


def drain(paths: Iterator[dict[str, Any]], quiet_s: float, timeout: float) -> list[dict[str, Any]]:
    """Path records until none came for `quiet_s` (at most `timeout`): what a survivor
    re-produces after `collect` is satisfied, so the test sees every record a key ends on."""
    got: list[dict[str, Any]] = []
    now = time.monotonic()
    last, deadline = now, now + timeout
    for record in paths:
        now = time.monotonic()
        if record:
            got.append(record)
            last = now
        if now - last > quiet_s or now > deadline:
            return got
    return got


def absorbed(record: dict[str, Any]) -> bool:
    """The whole trace was seen: the root absorbed the charge's error."""
    return record["outcome"] == "absorbed" and record["absorber"] is not None


def settings_for(bootstrap: str, make_topic: Any, prefix: str, **extra: Any) -> StreamSettings:
    make_topic(f"{prefix}.spans-by-trace", partitions=4)
    make_topic(f"{prefix}.paths")
    make_topic(f"{prefix}.events", partitions=4)
    return StreamSettings(
        bootstrap_servers=bootstrap,
        group=f"{prefix}-g",
        rekey_topic=f"{prefix}.spans-by-trace",
        paths_topic=f"{prefix}.paths",
        alerts_topic=f"{prefix}.events",
        wait_s=1.0,
        commit_interval_s=0.5,
        **extra,
    )


def test_one_instance_reads_a_real_collector_and_finds_every_path(spans, bootstrap, make_topic):
    """App → OTLP/HTTP → rotel → Kafka (rotel's own JSON, bare [ResourceSpans]) → stream."""
    rotel = shutil.which("rotel-agent") or str(
        Path(sys.executable).parent.parent
        / "lib"
        / f"python{sys.version_info.major}.{sys.version_info.minor}"
        / "site-packages/rotel/rotel-agent"
    )
    if not os.path.exists(rotel):
        pytest.skip("rotel is not installed")
    prefix = f"r{uuid.uuid4().hex[:6]}"
    topic = make_topic(f"{prefix}.otlp", partitions=2)
    settings = settings_for(
        bootstrap, make_topic, prefix, topics=(topic,), idle_exit_s=15.0, grace_s=2.0
    )
    http, grpc = free_port(), free_port()
    proc = subprocess.Popen(
        [rotel, "start", "--otlp-http-endpoint", f"127.0.0.1:{http}",
         "--otlp-grpc-endpoint", f"127.0.0.1:{grpc}", "--exporter", "kafka",
         "--kafka-exporter-brokers", bootstrap, "--kafka-exporter-traces-topic", topic,
         "--kafka-exporter-format", "json"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for_port(http, 20, proc)
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        traces, keys = make_traces(spans, 8)
        exporter = OTLPSpanExporter(f"http://127.0.0.1:{http}/v1/traces")
        for members in traces:
            assert exporter.export(members).name == "SUCCESS"
        found: list[dict[str, Any]] = []
        stream = SpanStream(settings, [found.append])
        stream.run()
    finally:
        proc.terminate()
        proc.wait(10)
    assert {r["key"] for r in found} == keys
    for record in found:
        assert record["origin"]["name"].startswith("charge-")
        assert record["absorber"]["name"].startswith("checkout-")
        assert record["outcome"] == "absorbed" and record["exact"]
        assert record["metadata"]["account_id"].startswith("acc_")
    assert stream.stats.poison_records == 0 and stream.stats.traces_assembled == 8


class Webhook:
    """A real HTTP server receiving the alert sink's POSTs."""

    def __init__(self) -> None:
        self.alerts: list[dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                outer.alerts.append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/alerts"


ACCOUNTS = [f"acc_{i}" for i in range(6)]


def firing_starts(hook: Webhook) -> dict[str, set[str]]:
    """Each account's alert start times, from the firing alerts the webhook received."""
    fired: dict[str, set[str]] = defaultdict(set)
    for alert in list(hook.alerts):
        if alert["status"] == "firing":
            fired[alert["group"]["account_id"]].add(alert["startsAt"])
    return fired


def firing_accounts(hook: Webhook) -> list[str]:
    return sorted(firing_starts(hook))


def start_instance(settings: StreamSettings, alerts: Path, log: Path) -> subprocess.Popen[bytes]:
    argv = [
        sys.executable, "-m", "tracectx", "stream", "--bootstrap-servers",
        settings.bootstrap_servers, "--topic", settings.topics[0], "--group", settings.group,
        "--rekey-topic", settings.rekey_topic, "--paths-topic", str(settings.paths_topic),
        "--alerts-topic", settings.alerts_topic, "--wait", "1", "--format", "otlp_proto",
        "--alerts", str(alerts),
    ]  # fmt: skip
    return subprocess.Popen(argv, stdout=log.open("wb"), stderr=subprocess.STDOUT, cwd=ROOT)


def stop_instances(instances: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM (a clean stop: commit, hand alerts over), then kill what did not stop in 30 s."""
    for proc in instances:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()


def read_events(bootstrap: str, topic: str, partitions: int) -> list[dict[str, Any]]:
    """Every alert event on the events topic."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, auto_offset_reset="earliest", consumer_timeout_ms=3000
    )
    consumer.assign([TopicPartition(topic, p) for p in range(partitions)])
    try:
        return [json.loads(record.value) for record in consumer]
    finally:
        consumer.close(timeout_ms=5_000)


@pytest.mark.timeout(420)
@pytest.mark.parametrize("run", range(5))  # the kill lands at a different moment each time
def test_two_instances_share_the_work_and_survive_a_kill(
    spans, bootstrap, make_topic, tmp_path, run
):
    prefix = f"k{uuid.uuid4().hex[:6]}"
    topic = make_topic(f"{prefix}.otlp", partitions=4)
    settings = settings_for(bootstrap, make_topic, prefix, topics=(topic,))
    redis = redis_server().start()
    hook = Webhook()
    alerts_yaml = tmp_path / "alerts.yaml"
    alerts_yaml.write_text(
        f"redis: redis://127.0.0.1:{redis.port}/0\n"
        "resend_interval: 2\n"  # an alert the killed instance fired is adopted 5 s later
        f"sinks:\n  hook: {{type: webhook, url: '{hook.url}'}}\n"
        "alert_rules:\n"
        "  - {name: burst, resource: '*', kinds: [BUSINESS], threshold: 2, window: 600,\n"
        "     group_by: [account_id], actions: [hook]}\n"
    )
    first, first_keys = make_traces(spans, 24)
    second, second_keys = make_traces(spans, 24)
    instances = [start_instance(settings, alerts_yaml, tmp_path / f"i{n}.log") for n in range(2)]
    paths = read_paths(bootstrap, str(settings.paths_topic))
    try:
        produce_split(bootstrap, topic, first)
        got = collect(paths, set(list(first_keys)[:6]), timeout=120)
        assert len({r["key"] for r in got}) >= 6, (tmp_path / "i0.log").read_text()[-2000:]
        instances[0].send_signal(signal.SIGKILL)  # mid-stream: no commit, no goodbye
        instances[0].wait(10)
        produce_split(bootstrap, topic, second)
        got += collect(paths, first_keys | second_keys, 180, absorbed, seen=got)
        got += drain(paths, quiet_s=10, timeout=60)  # late re-reads of the killed one's input
        keys = {r["key"] for r in got}
        assert keys == first_keys | second_keys, (tmp_path / "i1.log").read_text()[-3000:]
        # alerts are delivered on background threads; one fired by the killed instance (its
        # send maybe still queued) is adopted and sent by the other (`tracectx.alerting.handover`)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and firing_accounts(hook) != ACCOUNTS:
            time.sleep(0.5)
    finally:
        paths.close()  # closes its consumer now, while the broker is up
        stop_instances(instances)
        hook.server.shutdown()
        redis.stop()
    # at-least-once: every key ends on the whole trace's path, and a path re-produced after
    # that (the kill, a re-read) carries the same content. A trace whose spans were held up by
    # a rebalance longer than --wait is first analysed in part; its late span re-opens it and
    # the whole path supersedes the partial one under the same key.
    by_key: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in got:
        by_key[record["key"]].append(record)
    for records in by_key.values():
        assert absorbed(records[-1]), (
            [(r["outcome"], r["absorber"]) for r in records],
            records[-1]["key"] in first_keys,
            [(tmp_path / f"i{n}.log").read_text()[-1500:] for n in range(2)],
        )
        whole = records[[absorbed(r) for r in records].index(True) :]
        differ = [
            {k: (whole[0].get(k), r.get(k)) for k in set(r) | set(whole[0])
             if r.get(k) != whole[0].get(k)}
            for r in whole if r != whole[0]
        ]  # fmt: skip
        assert not differ, differ
    # every error's alert event reached the events topic (none lost with the killed instance)
    events = read_events(bootstrap, settings.alerts_topic, 4)
    routed = {e["event"]["error_id"] for e in events if e.get("rule") == "burst"}
    assert {k.split("/")[1] for k in first_keys | second_keys} <= routed
    # one alert per account: 8 errors each, the rule fires once at the 3rd, never twice
    fired = firing_starts(hook)
    assert sorted(fired) == ACCOUNTS, [(tmp_path / f"i{n}.log").read_text()[-1500:] for n in (0, 1)]
    assert all(len(starts) == 1 for starts in fired.values()), hook.alerts


class OtlpReceiver:
    """A local OTLP/HTTP receiver, as Jaeger runs on :4318: keeps every span it is sent."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                outer.bodies.append(self.rfile.read(int(self.headers["content-length"])))
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def spans(self) -> list[tuple[Any, Any]]:
        """(resource, span) for every span received."""
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
        )

        out = []
        for body in self.bodies:
            request = ExportTraceServiceRequest()
            request.MergeFromString(body)
            for resource in request.resource_spans:
                for scope in resource.scope_spans:
                    out += [(resource.resource, span) for span in scope.spans]
        return out


def test_write_back_sends_each_path_as_a_linked_trace(spans):
    from opentelemetry.proto.trace.v1.trace_pb2 import Status

    from tracectx.viz.analysis import analyse
    from tracectx.viz.sources.memory import from_readable_spans
    from tracectx_stream import path_records

    receiver = OtlpReceiver()
    try:
        [members], _ = make_traces(spans, 1)
        [analysis] = analyse(from_readable_spans(members))
        [record] = path_records(analysis)
        writer = PathWriter.over_http(receiver.endpoint)
        writer(record)
        assert writer.settle() == set()
        writer.shutdown()
    finally:
        receiver.server.shutdown()
    written = receiver.spans()
    services = {
        {a.key: a.value.string_value for a in r.attributes}["service.name"] for r, _ in written
    }
    assert services == {"tracectx"}
    svc = record["origin"]["service"]
    names = sorted(s.name for _, s in written)
    assert names == [f"absorbed: {svc} checkout-0", f"origin: {svc} charge-0"]  # no extra root
    origin = next(s for _, s in written if s.name.startswith("origin:"))
    absorber = next(s for _, s in written if s.name.startswith("absorbed:"))
    assert not origin.parent_span_id and absorber.parent_span_id == origin.span_id
    assert origin.status.code == Status.STATUS_CODE_ERROR  # the error was born here
    attrs = {a.key: a.value for a in origin.attributes}
    assert attrs["tracectx.error.kind"].string_value == "BUSINESS"
    assert attrs["tracectx.error.code"].string_value == "E_CARD"
    assert origin.links and origin.links[0].trace_id.hex() == record["trace_id"]
    assert origin.links[0].span_id.hex() == record["origin"]["span_id"]
