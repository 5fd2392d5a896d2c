"""Big exports (issue #14): `tracectx graph --format json` streams one trace at a time and writes
what the whole-file path writes; the readers keep OTLP event times; memory stays bounded by the
traces open at once; a core install (no msgspec, no orjson) reads and writes the same."""

from __future__ import annotations

import base64
import gzip
import json
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tracectx.cli import main
from tracectx.viz import analyse, load_spans, loads_spans
from tracectx.viz.renderers import to_json_data
from tracectx.viz.renderers.json import JsonWriter

_BASE = 1_700_000_000_000_000_000


def _span(trace: int, k: int, rng: random.Random, error: bool) -> dict[str, Any]:
    span: dict[str, Any] = {
        "traceId": f"{trace + 1:032x}",
        "spanId": f"{trace * 1000 + k + 1:016x}",
        "parentSpanId": "" if k == 0 else f"{trace * 1000 + (k - 1) // 2 + 1:016x}",
        "name": f"op-{k % 5}",
        "kind": 2 if k % 2 else 3,
        "startTimeUnixNano": str(_BASE + trace * 10**7 + k * 1000),
        "endTimeUnixNano": str(_BASE + trace * 10**7 + 10**6 - k * 1000),
        "attributes": [
            {"key": "http.request.method", "value": {"stringValue": "GET"}},
            {"key": "http.response.status_code", "value": {"intValue": "500" if error else "200"}},
            {"key": "retry", "value": {"boolValue": False}},
            {"key": "ratio", "value": {"doubleValue": rng.random()}},
        ],
        "status": {"code": 2, "message": "boom"} if error else {},
    }
    if error:
        span["events"] = [
            {
                "timeUnixNano": str(_BASE + trace * 10**7 + 5000),
                "name": "exception",
                "attributes": [
                    {"key": "exception.type", "value": {"stringValue": "ValueError"}},
                    {"key": "exception.message", "value": {"stringValue": "boom"}},
                ],
            }
        ]
    return span


def _export(n_traces: int, per_trace: int, batch: int, seed: int = 3) -> list[bytes]:
    """JSON lines as an exporter writes them: spans shuffled within a window of traces (so
    traces interleave across lines), `batch` spans a line, grouped by service."""
    rng = random.Random(seed)
    spans = []
    for t in range(n_traces):
        failing = rng.random() < 0.3
        for k in range(per_trace):
            spans.append((t + rng.random() * 3, _span(t, k, rng, failing and k >= per_trace - 3)))
    spans.sort(key=lambda item: item[0])
    lines = []
    for i in range(0, len(spans), batch):
        by_service: dict[str, list[dict[str, Any]]] = {}
        for _, span in spans[i : i + batch]:
            by_service.setdefault(f"svc-{int(span['spanId'], 16) % 3}", []).append(span)
        doc = {
            "resourceSpans": [
                {
                    "resource": {
                        "attributes": [{"key": "service.name", "value": {"stringValue": svc}}]
                    },
                    "scopeSpans": [{"scope": {"name": "s"}, "spans": members}],
                }
                for svc, members in by_service.items()
            ]
        }
        lines.append(json.dumps(doc).encode())
    return lines


def _whole(paths: list[Path]) -> Any:
    """What the whole-file path gives: to_json_data(analyse(load_spans)), as parsed JSON."""
    return json.loads(json.dumps(to_json_data(analyse(load_spans(paths))), default=str))


def test_streamed_json_is_the_whole_file_json(tmp_path, capsys):
    lines = _export(40, 12, 37)
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"  # traces continue across files
    first.write_bytes(b"\n".join(lines[:7]) + b"\n")
    second.write_bytes(b"\n".join(lines[7:]) + b"\n")
    out = tmp_path / "out.json"
    assert main(["graph", str(first), str(second), "--format", "json", "-o", str(out)]) == 0
    assert capsys.readouterr().out == f"wrote {out}\n"
    expected = _whole([first, second])
    got = json.loads(out.read_bytes())
    assert got == expected
    assert len(got["traces"]) == 40 and got["flow"]["origins"]
    assert main(["graph", str(first), str(second), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == expected


def test_input_problems_lead_the_first_trace_and_reach_stderr(tmp_path, capsys):
    lines = _export(5, 4, 6)
    path = tmp_path / "in.jsonl"
    path.write_bytes(b"\n".join([lines[0], b"{broken", *lines[1:]]))
    assert main(["graph", str(path), "--format", "json"]) == 0
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert data["traces"][0]["problems"][0].startswith(f"{path}: line 2: not JSON (")
    assert data == _whole([path])
    assert "line 2: not JSON" in captured.err


def test_span_event_times_are_read_from_otlp_json_and_protobuf():
    doc = {"resourceSpans": [{"scopeSpans": [{"spans": [_span(0, 0, random.Random(1), True)]}]}]}
    [span] = loads_spans(json.dumps(doc)).spans
    assert span.events[0].time_ns == _BASE + 5000
    from google.protobuf.json_format import ParseDict
    from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

    raw = doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    for key in ("traceId", "spanId"):  # protobuf JSON writes bytes as base64
        raw[key] = base64.b64encode(bytes.fromhex(raw[key])).decode()
    proto = ParseDict(doc, TracesData()).SerializeToString()
    [from_proto] = loads_spans(proto).spans
    assert from_proto.events[0].time_ns == _BASE + 5000


_MEASURE_PEAKS = """
import sys, tracemalloc
from tracectx.viz import load_spans
from tracectx.viz.sources.traces import count_spans, traces
path = sys.argv[1]
sum(1 for _ in traces([path], count_spans([path]), []))  # imports and caches, before measuring
tracemalloc.start()
whole = load_spans(path)
_, whole_peak = tracemalloc.get_traced_memory()
del whole
tracemalloc.reset_peak()
baseline = tracemalloc.get_traced_memory()[0]
seen = sum(len(trace) for trace in traces([path], count_spans([path]), []))
streamed_peak = tracemalloc.get_traced_memory()[1] - baseline
print(seen, whole_peak, streamed_peak)
"""


def test_memory_holds_the_open_traces_not_the_file(tmp_path):
    # A fresh interpreter: tracemalloc counts every thread's allocations, and threads other
    # tests leave behind (exporters, stream stages) once inflated the streamed peak 2.6x.
    path = tmp_path / "big.jsonl"
    path.write_bytes(b"\n".join(_export(800, 25, 50)))
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE_PEAKS, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    seen, whole_peak, streamed_peak = map(int, done.stdout.split())
    assert seen == 800 * 25
    assert streamed_peak * 5 < whole_peak, (streamed_peak, whole_peak)


def test_gzipped_lines_stream_and_a_broken_tail_keeps_the_rest(tmp_path):
    lines = _export(10, 5, 10)
    path = tmp_path / "spans.jsonl.gz"
    path.write_bytes(gzip.compress(b"\n".join(lines)))
    assert len(load_spans(path).spans) == 50
    packed = gzip.compress(b"\n".join(lines))
    path.write_bytes(packed[: len(packed) - 40])  # cut inside the last members' data
    cut = load_spans(path)
    assert 0 < len(cut.spans) < 50
    assert any("broken gzip input" in p for p in cut.problems)


def test_writer_falls_back_to_json_for_what_orjson_cannot_write(tmp_path):
    doc = {"resourceSpans": [{"scopeSpans": [{"spans": [_span(0, 0, random.Random(1), False)]}]}]}
    analyses = analyse(loads_spans(json.dumps(doc)))
    analyses[0].spans["0000000000000001"].attributes["huge"] = 2**70
    analyses[0].spans["0000000000000001"].attributes["text"] = "lone \ud800 é"
    path = tmp_path / "out.json"
    with JsonWriter() as writer, path.open("wb") as out:
        for a in analyses:
            writer.add(a)
        writer.finish(out)
    text = path.read_bytes()
    assert text.isascii()
    assert json.loads(text) == json.loads(json.dumps(to_json_data(analyses), default=str))


BLOCKED = r"""
import importlib.abc, sys

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("msgspec", "orjson", "rich"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name.split(".")[0])
        return None

sys.meta_path.insert(0, Block())
from tracectx.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("blocked", [False, True], ids=["viz-extra", "core-install"])
def test_core_install_streams_the_same_json(tmp_path, blocked):
    path = tmp_path / "in.jsonl"
    path.write_bytes(b"\n".join(_export(8, 6, 9)))
    out = tmp_path / "out.json"
    argv = ["graph", str(path), "--format", "json", "-o", str(out)]
    run = (
        [sys.executable, "-c", BLOCKED, *argv]
        if blocked
        else [sys.executable, "-m", "tracectx", *argv]
    )
    done = subprocess.run(run, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(out.read_bytes()) == _whole([path])


def test_an_unwritable_output_is_a_message_and_exit_1(tmp_path, capsys):
    path = tmp_path / "in.jsonl"
    path.write_bytes(b"\n".join(_export(2, 3, 4)))
    target = tmp_path / "missing" / "out.json"
    assert main(["graph", str(path), "--format", "json", "-o", str(target)]) == 1
    captured = capsys.readouterr()
    assert f"cannot write {target}" in captured.err and captured.out == ""


def test_a_span_of_a_trace_already_written_is_skipped_not_a_second_trace():
    """When the file grows between the counting and the reading pass, a late span of a trace
    already handed on is counted as a problem instead of coming out as a second trace."""
    from tracectx.viz.model import Span
    from tracectx.viz.sources.traces import _Grouper

    def span(trace: str, n: int) -> Span:
        return Span(trace * 32, f"{n:016x}", None, "op", "svc", 0, 1)

    grouper = _Grouper({"a" * 32: 1, "b" * 32: 1})
    out = [*grouper.add([span("a", 1)]), *grouper.add([span("b", 2), span("a", 3)])]
    out += grouper.rest()
    assert [[s.span_id for s in t] for t in out] == [[f"{1:016x}"], [f"{2:016x}"]]
    assert grouper.late == 1
