"""Never silent: every input problem reaches the user, nothing usable is a clear non-zero exit,
and malformed parts of a file are listed while the rest is still analysed."""

from __future__ import annotations

import copy
import http.server
import io
import json
import threading
from pathlib import Path

import pytest
from rich.console import Console

from tests.viz.test_sources import JAEGER_TRACE, TRACE, _otlp_doc
from tracectx.cli import main
from tracectx.viz import analyse, load_spans, loads_spans
from tracectx.viz.model import Span
from tracectx.viz.renderers import (
    annotated_jaeger_json,
    render_dot,
    render_html,
    render_mermaid,
    render_terminal,
    to_json_data,
)
from tracectx.viz.sources.jaeger_api import JaegerAPIError, fetch_trace

SOURCE_TRACE_ID = "tracectx.viz.source_trace_id"  # where the original ids are kept (README)
SOURCE_SPAN_ID = "tracectx.viz.source_span_id"

# A Jaeger export as jaeger-ui's fixtures write it: a bare array of spans, process inline,
# ids that are not hex.
UI_SPANS = [
    {
        "traceID": "trace-123",
        "spanID": "span-root",
        "operationName": "GET /cart",
        "references": [],
        "startTime": 1000,
        "duration": 900,
        "process": {"serviceName": "frontend", "tags": []},
        "tags": [],
    },
    {
        "traceID": "trace-123",
        "spanID": "span-db",
        "operationName": "SELECT",
        "references": [{"refType": "CHILD_OF", "traceID": "trace-123", "spanID": "span-root"}],
        "startTime": 1100,
        "duration": 100,
        "process": {"serviceName": "db", "tags": []},
        "tags": [{"key": "error", "type": "bool", "value": True}],
    },
]


def _render_all(analyses) -> None:
    render_terminal(analyses, Console(file=io.StringIO(), width=120))
    render_html(analyses)
    render_mermaid(analyses)
    render_dot(analyses)
    json.dumps(to_json_data(analyses, "http://j"), default=str)
    json.dumps(annotated_jaeger_json(analyses), default=str)


class TestCliNeverSilent:
    @pytest.mark.parametrize(
        ("content", "expected"),
        [
            (None, "No such file"),
            (b"\x00\xffgarbage\x01 not json at all", "not JSON"),
            (json.dumps(_otlp_doc(), indent=2)[:-60].encode(), "not JSON"),  # truncated, many lines
            (json.dumps(_otlp_doc())[:-40].encode(), "not JSON"),  # truncated, one line
            (b'{"kind": "metrics", "points": []}', "accepted: OTLP JSON"),
            (b"[1, 2, 3]", "accepted: OTLP JSON"),
            (b"", "empty input"),
        ],
        ids=[
            "missing",
            "garbage",
            "truncated-pretty",
            "truncated-line",
            "unknown",
            "ints",
            "empty",
        ],
    )
    def test_nothing_usable_is_a_message_and_exit_1(self, tmp_path, capsys, content, expected):
        path = tmp_path / "in.json"
        if content is not None:
            path.write_bytes(content)
        assert main(["graph", str(path)]) == 1
        captured = capsys.readouterr()
        assert captured.out == ""
        assert expected in captured.err and str(path) in captured.err
        assert "no spans found" in captured.err
        assert len(captured.err.splitlines()) <= 3  # one clear message, not a flood per line

    def test_problems_go_to_stderr_and_the_graph_still_renders(self, tmp_path, capsys):
        doc = copy.deepcopy(JAEGER_TRACE)
        doc["spans"].append({"traceID": TRACE, "spanID": "00f067aa0ba902c0", "logs": ["x"]})
        path = tmp_path / "in.json"
        path.write_text(json.dumps(doc) + "\n{broken\n")
        for fmt in ("terminal", "mermaid", "dot", "json"):
            assert main(["graph", str(path), "--format", fmt]) == 0
            captured = capsys.readouterr()
            assert "charge" in captured.out
            assert "line 2: not JSON" in captured.err and "log 'x' is not an object" in captured.err


class TestAcceptedShapes:
    def test_jaeger_ui_bare_span_array_with_non_hex_ids(self, tmp_path, capsys):
        span_set = loads_spans(json.dumps(UI_SPANS))
        [a] = analyse(span_set)
        root = next(s for s in a.spans.values() if s.name == "GET /cart")
        db = next(s for s in a.spans.values() if s.name == "SELECT")
        assert db.parent_id == root.span_id and root.span_id in a.roots
        assert (root.service, db.service) == ("frontend", "db")
        assert len(root.trace_id) == 32 and int(root.trace_id, 16) >= 0
        assert root.attributes[SOURCE_TRACE_ID] == "trace-123"
        assert db.attributes[SOURCE_SPAN_ID] == "span-db"
        assert [e.origin for e in a.errors] == [db.span_id]
        assert any("not hex" in p and "trace-123" in p for p in span_set.problems)
        assert loads_spans(json.dumps(UI_SPANS)).spans[0].trace_id == root.trace_id  # stable

        path = tmp_path / "ui.json"
        path.write_text(json.dumps(UI_SPANS))
        assert main(["graph", str(path), "--format", "json"]) == 0
        captured = capsys.readouterr()
        assert "trace-123" in captured.out and "not hex" in captured.err
        assert main(["graph", str(path)]) == 0
        assert "trace-123" in capsys.readouterr().out  # the terminal header names the original

    def test_load_spans_takes_one_path_as_str_or_path(self, tmp_path):
        path = tmp_path / "t.json"
        path.write_text(json.dumps(JAEGER_TRACE))
        assert len(load_spans(str(path)).spans) == 3
        assert len(load_spans(path).spans) == 3
        assert len(load_spans([path, str(path)]).spans) == 6

    def test_jaeger_error_report_is_a_problem(self):
        doc = {"data": None, "errors": [{"code": 500, "msg": "storage down"}]}
        assert loads_spans(json.dumps(doc)).problems == ["Jaeger reported an error: 'storage down'"]


def _span(sid, parent=None, error=False, name=None):
    return Span("a" * 32, sid, parent, name or sid, "svc", 0, 1, error=error)


class TestTraceProblems:
    def test_a_span_that_is_its_own_parent_is_reported(self):
        [a] = analyse([_span("1" * 16, "1" * 16)])
        assert a.roots == ["1" * 16]
        assert any("its own parent" in p for p in a.problems)

    @pytest.mark.parametrize("error_first", [True, False])
    def test_duplicate_span_id_keeps_the_copy_with_the_error(self, error_first):
        copies = [_span("1" * 16, error=True, name="failed"), _span("1" * 16, name="clean")]
        [a] = analyse(copies if error_first else copies[::-1])
        assert a.spans["1" * 16].name == "failed" and a.errors
        assert any("duplicate span id" in p for p in a.problems)


GOOD_OTLP_SPAN = _otlp_doc()["resourceSpans"][0]["scopeSpans"][0]["spans"][1]


def _otlp_with(**fields):
    bad = {**GOOD_OTLP_SPAN, "spanId": "1" * 16, "name": "bad", **fields}
    return {"resourceSpans": [{"scopeSpans": [{"spans": [GOOD_OTLP_SPAN, bad]}]}]}


def _jaeger_with(**fields):
    bad = {**JAEGER_TRACE["spans"][1], "spanID": "1" * 16, "operationName": "bad", **fields}
    return {**JAEGER_TRACE, "spans": [*JAEGER_TRACE["spans"], bad]}


class TestWrongTypes:
    @pytest.mark.parametrize(
        "doc",
        [
            _otlp_with(links=["x"]),
            _otlp_with(links=5),
            _otlp_with(events=5),
            _otlp_with(events=["x"]),
            _otlp_with(attributes=[{"key": "k", "value": {"arrayValue": "s"}}]),
            _otlp_with(attributes=[{"key": "k", "value": {"kvlistValue": [1]}}, 7]),
            _otlp_with(status=[1]),
            _otlp_with(endTimeUnixNano="9" * 400),
            _otlp_with(startTimeUnixNano=1e300),
            _jaeger_with(logs=["x"]),
            _jaeger_with(logs=[{"fields": 3}]),
            _jaeger_with(references=3),
            _jaeger_with(references=["x"]),
            _jaeger_with(tags={"error": True}),
            _jaeger_with(duration="1" * 400),
            _jaeger_with(duration=1e300),
            _jaeger_with(process=[1]),
            {**JAEGER_TRACE, "processes": [1]},
        ],
    )
    def test_bad_part_is_a_problem_and_the_rest_is_read(self, doc):
        span_set = loads_spans(json.dumps(doc))
        assert span_set.problems
        assert any(s.name == "charge" for s in span_set.spans)
        analyses = analyse(span_set)
        _render_all(analyses)

    @pytest.mark.parametrize("doc", [{"resourceSpans": 1}, {"resourceSpans": [{"scopeSpans": 1}]}])
    def test_bad_containers_are_problems(self, doc):
        span_set = loads_spans(json.dumps(doc))
        assert not span_set.spans and "expected an array" in span_set.problems[0]

    def test_huge_duration_does_not_overflow(self):
        doc = _jaeger_with(duration="9" * 400)
        [a] = analyse(loads_spans(json.dumps(doc)))
        assert all(s.duration_ms < 1e12 for s in a.spans.values())


class TestDeepNesting:
    def test_deep_document(self):
        text = "[" * 1000 + "]" * 1000
        span_set = loads_spans(text)
        assert not span_set.spans and "nested too deep" in span_set.problems[0]

    def test_deep_tag_value_is_cut_not_a_recursion_error(self):
        deep = "[" * 1000 + '"leaf"' + "]" * 1000  # json.dumps itself cannot write this
        doc = copy.deepcopy(JAEGER_TRACE)
        doc["spans"][1]["tags"].append({"key": "deep", "value": "@"})
        otlp_deep = '{"arrayValue": {"values": [' * 300 + '{"stringValue": "x"}' + "]}}" * 300
        otlp = json.dumps(_otlp_with(attributes=[{"key": "deep", "value": "@"}]))
        for text in (json.dumps(doc).replace('"@"', deep), otlp.replace('"@"', otlp_deep)):
            [a] = analyse(loads_spans(text))
            assert any("deep" in s.attributes for s in a.spans.values())
            _render_all([a])

    def test_span_chain_a_thousand_deep(self, capsys):
        chain = [_span(f"{i + 1:016x}", f"{i:016x}" if i else None) for i in range(1000)]
        chain[-1].error = True
        [a] = analyse(chain)
        [err] = a.errors
        assert err.origin == chain[-1].span_id and err.absorber == chain[-2].span_id
        _render_all([a])
        console = Console(file=io.StringIO(), width=100)
        render_terminal([a], console)
        out = console.file.getvalue()  # type: ignore[attr-defined]
        assert "deeper spans, listed flat" in out and "✖ origin" in out


class _HostileJaeger(http.server.BaseHTTPRequestHandler):
    body = b""

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args):
        pass


@pytest.fixture
def hostile_jaeger():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _HostileJaeger)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def test_jaeger_api_deep_body_is_a_clear_error(hostile_jaeger):
    _HostileJaeger.body = b"[" * 100_000
    with pytest.raises(JaegerAPIError, match="non-JSON"):
        fetch_trace(hostile_jaeger, TRACE)


def test_cli_jaeger_with_wrong_types_lists_problems(hostile_jaeger, capsys):
    _HostileJaeger.body = json.dumps({"data": [_jaeger_with(logs=["x"])]}).encode()
    assert main(["graph", "--jaeger", hostile_jaeger, "--trace-id", TRACE]) == 0
    captured = capsys.readouterr()
    assert "charge" in captured.out and "is not an object" in captured.err


def test_unreadable_file_does_not_hide_the_readable_one(tmp_path: Path, capsys):
    good = tmp_path / "good.json"
    good.write_text(json.dumps(JAEGER_TRACE))
    assert main(["graph", str(good), str(tmp_path / "missing.json")]) == 0
    captured = capsys.readouterr()
    assert "charge" in captured.out and "missing.json: No such file" in captured.err
