"""The alert stage's producer ends with the stream: a stopped stream leaves no producer thread
behind, and the events it routed before the stop are on the events topic (real broker)."""

from __future__ import annotations

import gc
import uuid
from pathlib import Path

import pytest

from tests.stream.test_stream_faults import run_in_thread, wait_until
from tests.stream.test_stream_kafka import make_traces, produce_split, read_events, settings_for

pytestmark = pytest.mark.integration


def producer_threads() -> int:
    """librdkafka's threads (``rdk:main``, ``rdk:broker…``) running in this process, after a
    collection (producers other tests left behind end when collected)."""
    gc.collect()
    names = (p.read_text().strip() for p in Path("/proc/self/task").glob("*/comm"))
    return sum(name.startswith("rdk:") for name in names)


def test_a_stopped_stream_closes_the_alert_stage_producer(
    spans, bootstrap, make_topic, tmp_path: Path
):
    from tracectx_stream import build_stream

    prefix = f"a{uuid.uuid4().hex[:6]}"
    topic = make_topic(f"{prefix}.otlp", partitions=1)
    client_id = f"{prefix}-client"
    settings = settings_for(
        bootstrap, make_topic, prefix, topics=(topic,), grace_s=0.5, client_id=client_id
    )
    alerts_yaml = tmp_path / "alerts.yaml"
    alerts_yaml.write_text(
        "alert_rules:\n"
        "  - {name: burst, resource: '*', kinds: [BUSINESS], threshold: 100, window: 60,\n"
        "     group_by: [account_id], actions: []}\n"
    )
    traces, keys = make_traces(spans, 3)
    produce_split(bootstrap, topic, traces)
    found: list[dict[str, object]] = []
    before = producer_threads()
    stream = build_stream(settings, alerts=alerts_yaml, handlers=[found.append])
    (stage,) = stream.stages
    thread = run_in_thread(stream)
    try:
        assert wait_until(lambda: len(found) == 3 and stage.routed == 3, 120), (
            stream.stats.as_dict()
        )
        assert stage._producer is not None and stream._producer is not stage._producer
        assert producer_threads() > before  # the stream's producer and the stage's
    finally:
        stream.stop()
        thread.join(60)
    assert not thread.is_alive() and not thread.errors  # type: ignore[attr-defined]
    assert stage._producer is None
    assert producer_threads() <= before
    routed = {e["event"]["error_id"] for e in read_events(bootstrap, settings.alerts_topic, 4)}
    assert routed == {key.split("/")[1] for key in keys}
