"""The stream's OTel metrics with several streams in one process: each stream reported, under
its own instance number, while it is alive (a fresh interpreter: its own global provider)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

TWO_STREAMS = """
    import gc, json, weakref
    from opentelemetry import metrics
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from tracectx_stream import StreamSettings
    from tracectx_stream.worker import SpanStream

    reader = InMemoryMetricReader()
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))

    def spans_in():
        return sorted(
            [p.value, dict(p.attributes)]
            for rm in reader.get_metrics_data().resource_metrics
            for sm in rm.scope_metrics
            for m in sm.metrics
            if m.name == "tracectx.stream.spans_in"
            for p in m.data.data_points
        )

    settings = StreamSettings(bootstrap_servers="127.0.0.1:9")
    first, second = SpanStream(settings), SpanStream(settings)
    first.stats.spans_in, second.stats.spans_in = 5, 7
    both = spans_in()
    gone = weakref.ref(first.stats)
    del first
    gc.collect()
    print(json.dumps({"both": both, "after": spans_in(), "kept": gone() is not None}))
"""


def test_two_streams_in_one_process_are_each_reported_while_alive():
    """Registering the instruments per stream kept the first stream's callbacks only: the
    second stream was never reported, and the first one's stats were reported (and kept
    alive) after it was gone."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "TRACECTX_"))}
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(TWO_STREAMS)],
        env={**clean, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "integrations")])},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    instance = "tracectx.stream.instance"
    assert out["both"] == [[5, {instance: 1}], [7, {instance: 2}]]
    assert out["after"] == [[7, {instance: 2}]]
    assert out["kept"] is False
