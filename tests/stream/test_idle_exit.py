"""``--idle-exit`` (batch runs) waits for the stages to join their groups: with an idle time
shorter than a group join (tansu, like Kafka, holds a new group's first join for a few
seconds), an instance still reads every span and produces every path before it exits."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from tests.stream.test_stream_kafka import make_traces, produce_split, settings_for
from tracectx_stream import SpanStream

pytestmark = pytest.mark.integration


def test_idle_exit_counts_from_the_group_joins_not_from_the_start(spans, bootstrap, make_topic):
    prefix = f"i{uuid.uuid4().hex[:6]}"
    topic = make_topic(f"{prefix}.otlp", partitions=2)
    traces, keys = make_traces(spans, 5)
    produce_split(bootstrap, topic, traces)
    settings = settings_for(
        bootstrap, make_topic, prefix, topics=(topic,), idle_exit_s=2.0, grace_s=0.5
    )
    found: list[dict[str, Any]] = []
    stream = SpanStream(settings, [found.append])
    started = time.monotonic()
    stream.run()
    assert stream.stats.spans_in == sum(len(t) for t in traces), stream.stats.as_dict()
    assert {record["key"] for record in found} == keys
    assert time.monotonic() - started < 60
