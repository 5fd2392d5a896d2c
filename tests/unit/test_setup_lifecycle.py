"""`tracectx.setup()` over a process's life: forks add no threads, setups and teardowns over
and over add no span processors (each in a fresh interpreter: its own global provider)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.unit.test_setup import run_app, spans_in

FORK = """
    import json, os, threading
    import tracectx
    from opentelemetry import trace

    def batch_threads():
        return sum(t.name.startswith("OtelBatch") for t in threading.enumerate())

    tracectx.setup("svc", spans_file="spans/svc.otlp.jsonl", integrations=[])
    with tracectx.traced("in-parent"):
        pass
    report = {"parent": batch_threads(), "children": []}
    for n in range(3):  # each child forked after the one before has ended
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            with tracectx.traced(f"in-child-{n}"):
                pass
            trace.get_tracer_provider().force_flush()
            child = {"pid": os.getpid(), "batch": batch_threads(), "all": threading.active_count()}
            os.write(w, json.dumps(child).encode())
            os._exit(0)
        os.close(w)
        with os.fdopen(r, "rb") as pipe:
            report["children"].append(json.loads(pipe.read()))
        os.waitpid(pid, 0)
    tracectx.teardown()
    print(json.dumps(report))
"""


def test_a_forked_child_runs_one_batch_thread_per_exporter(tmp_path: Path):
    """The child exports through the processors it inherited (the SDK restarts their threads
    after a fork) into exporters of its own; building new processors as well left the inherited
    ones' restarted threads idle in every child, one per exporter (file + console: 2 more)."""
    out = run_app(FORK, tmp_path, OTEL_TRACES_EXPORTER="console")
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["parent"] == 2  # the file and the console
    for n, child in enumerate(report["children"]):
        assert (child["batch"], child["all"]) == (2, 3), child
        (span,) = spans_in(tmp_path / "spans" / f"svc-{child['pid']}.otlp.jsonl")
        assert span.name == f"in-child-{n}"
    (span,) = spans_in(tmp_path / "spans" / "svc.otlp.jsonl")
    assert span.name == "in-parent"  # the children's spans are not in the parent's file


AGAIN = """
    import json, threading
    import tracectx
    from opentelemetry import trace

    counts = []
    for n in range(6):
        tracectx.setup("svc", spans_file=f"spans/run-{n}.otlp.jsonl", integrations=[])
        with tracectx.traced(f"run-{n}"):
            pass
        tracectx.teardown()
        provider = trace.get_tracer_provider()
        counts.append(
            (len(provider._active_span_processor._span_processors), threading.active_count())
        )
    print(json.dumps(counts))
"""


def test_setup_and_teardown_over_and_over_keep_one_span_processor(tmp_path: Path):
    """The provider keeps one tracectx processor, restarted by each setup: adding one per setup
    kept every torn-down one in the provider (6 setups: 6 processors, each called per span)."""
    out = run_app(AGAIN, tmp_path)
    counts = json.loads(out.stdout.strip().splitlines()[-1])
    assert counts == [[1, 1]] * 6
    for n in range(6):  # each setup's spans in its own file, none lost by the restarts
        (span,) = spans_in(tmp_path / "spans" / f"run-{n}.otlp.jsonl")
        assert span.name == f"run-{n}"
