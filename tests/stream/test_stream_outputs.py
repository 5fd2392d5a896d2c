"""Outputs that fail for good do not stop an instance: a record the broker can never take is
rejected (counted, not retried), a trace whose output keeps failing is given up after a few
re-reads (counted) and its input committed past, a big trace's re-keyed spans are split under
Kafka's record limit, a failed write-back export reports its trace, a runaway trace is capped."""

from __future__ import annotations

import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.stream.test_stream_faults import produce_keyed
from tests.stream.test_stream_kafka import make_traces, settings_for
from tracectx.viz.analysis import analyse
from tracectx.viz.model import Span
from tracectx.viz.sources.memory import from_readable_spans
from tracectx_stream import SpanStream, path_records
from tracectx_stream.assembler import TraceAssembler
from tracectx_stream.decode import decode_trace_batch
from tracectx_stream.delivery import Outbox, OutputProducer, producer_config
from tracectx_stream.stats import StreamStats
from tracectx_stream.worker import MAX_REKEY_BYTES, _encoded
from tracectx_stream.writeback import PathWriter

pytestmark = pytest.mark.integration


def test_a_record_the_broker_can_never_take_is_rejected_not_retried(bootstrap, make_topic):
    topic = make_topic()
    stats = StreamStats()
    producer = OutputProducer(producer_config(bootstrap, "rejection-test"))
    try:
        outbox = Outbox(producer, stats)
        outbox.send(topic, b"k", b"x" * (2 << 20), "trace-a")  # over message.max.bytes (1 MB)
        outbox.send(topic, b"k", b"fine", "trace-b")
        assert outbox.settle() == set()  # nothing to re-read for: it would fail the same way
    finally:
        producer.close(10)
    assert stats.outputs_rejected == 1 and stats.produce_errors[topic] == 1
    assert stats.produced[topic] == 1


def test_a_trace_whose_output_always_fails_is_given_up_and_committed_past(
    spans, bootstrap, make_topic
):
    prefix = f"g{uuid.uuid4().hex[:6]}"
    topic = make_topic(f"{prefix}.otlp")
    traces, _ = make_traces(spans, 1)
    produce_keyed(bootstrap, topic, traces)
    settings = settings_for(
        bootstrap, make_topic, prefix, topics=(topic,), partitioned_by_trace=True,
        idle_exit_s=8.0, grace_s=0.5,
    )  # fmt: skip

    def always_fails(record: dict[str, Any]) -> None:
        raise RuntimeError("this sink never works")

    stream = SpanStream(settings, [always_fails])
    stream.run()
    assert stream.stats.outputs_given_up == 1, stream.stats.as_dict()
    assert stream.stats.handler_errors == 4 and stream.stats.redone_traces == 3
    again = SpanStream(settings)
    again.run()  # the same group: the input was committed past, nothing is read again
    assert again.stats.traces_assembled == 0 and again.stats.spans_in == 0


def test_a_big_trace_is_re_keyed_in_records_under_the_limit():
    attrs = {"payload": "x" * 400}
    big = [
        Span("ab" * 16, f"{i:016x}", None, "op", "svc", 1, 2, attributes=attrs) for i in range(4000)
    ]
    values = _encoded(big)
    assert len(values) > 1 and all(len(v) <= MAX_REKEY_BYTES for v in values)
    back = [s for v in values for s in decode_trace_batch(v).spans]
    assert [s.span_id for s in back] == [s.span_id for s in big]


def test_a_failed_write_back_export_reports_its_trace(spans):
    class Refuses(BaseHTTPRequestHandler):  # an OTLP receiver that refuses (not retryable)
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["content-length"]))
            self.send_response(400)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Refuses)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        [members], _ = make_traces(spans, 1)
        [record] = [r for a in analyse(from_readable_spans(members)) for r in path_records(a)]
        writer = PathWriter.over_http(f"http://127.0.0.1:{server.server_port}")
        writer.stats = StreamStats()
        writer(record)
        assert writer.settle() == {record["trace_id"]}
        assert writer.stats.writeback_errors == 1
        assert writer.settle() == set()  # reported once: the stream re-reads and writes again
    finally:
        server.shutdown()


def test_a_runaway_trace_is_capped():
    assembler = TraceAssembler(1.0, max_spans=10)
    for i in range(25):
        assembler.add([Span("cd" * 16, f"{i:016x}", None, "op", "svc", i, i + 1)], float(i) / 100)
    [buf] = assembler.due(100.0)
    assert len(buf.spans) == 10 and assembler.stats.capped == 15
