"""The write-back's exporter ends with the stream: a stopped stream has exported its paths and
shut the exporter down (real broker, the SDK's in-memory exporter as the OTLP endpoint)."""

from __future__ import annotations

import uuid

import pytest
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.stream.test_stream_faults import run_in_thread, wait_until
from tests.stream.test_stream_kafka import make_traces, produce_split, settings_for

pytestmark = pytest.mark.integration


def test_a_stopped_stream_shuts_the_write_back_exporter_down(spans, bootstrap, make_topic):
    from tracectx_stream.worker import SpanStream
    from tracectx_stream.writeback import ATTR_SOURCE_TRACE, PathWriter

    prefix = f"w{uuid.uuid4().hex[:6]}"
    topic = make_topic(f"{prefix}.otlp", partitions=1)
    settings = settings_for(bootstrap, make_topic, prefix, topics=(topic,), grace_s=0.5)
    exporter = InMemorySpanExporter()
    writer = PathWriter(exporter)
    traces, keys = make_traces(spans, 2)
    produce_split(bootstrap, topic, traces)
    stream = SpanStream(settings, [writer])
    thread = run_in_thread(stream)
    try:
        assert wait_until(lambda: stream.stats.paths_out == 2, 120), stream.stats.as_dict()
    finally:
        stream.stop()
        thread.join(60)
    assert not thread.is_alive() and not thread.errors  # type: ignore[attr-defined]
    written = {(s.attributes or {}).get(ATTR_SOURCE_TRACE) for s in exporter.get_finished_spans()}
    assert written >= {key.split("/")[0] for key in keys}
    assert exporter.export([]) is SpanExportResult.FAILURE  # shut down: refuses more
