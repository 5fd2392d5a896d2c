"""Span names, services and messages from a span file cannot drive the operator's terminal, break
the DOT or Mermaid syntax, or be read as rich markup — in every text format, on a TTY and in a
pipe, through the API, `tracectx graph` and the demo's printed lines."""

from __future__ import annotations

import io
import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from rich.console import Console

from tests.viz.dot_syntax import parse_dot
from tracectx import ErrorKind, new_error, traced
from tracectx.cli import main
from tracectx.file_exporter import spans_to_otlp
from tracectx.safetext import has_control
from tracectx.viz import analyse, loads_spans
from tracectx.viz.model import Span
from tracectx.viz.renderers import render_dot, render_mermaid, render_terminal
from tracectx.viz.sources.memory import from_readable_spans

TITLE_BEL = "\x1b]0;pwned\x07"
TITLE_ST = "\x1b]0;pwned2\x1b\\"
CLEAR = "\x1b[2J"
CURSOR = "\x1b[5A\x1b[10;10H"
COLOUR = "\x1b[7m"
RLO = "\u202e"
MARKUP = "[bold red]x[/]"
EVIL = f"pay{TITLE_BEL}{TITLE_ST}{CLEAR}{CURSOR}{COLOUR}{RLO}gnp.exe {MARKUP}"
RAW = (TITLE_BEL, TITLE_ST, CLEAR, "\x1b[5A", "\x1b[10;10H", COLOUR, RLO, "\x07")


@pytest.fixture
def evil_spans(spans):
    """Real SDK spans whose span name, service name, error message and code are hostile."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "svc" + EVIL}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("evil")
    with pytest.raises(Exception), tracer.start_as_current_span("root"):
        with tracer.start_as_current_span(EVIL), traced("inner" + EVIL):
            raise new_error(ErrorKind.BUSINESS, "msg" + EVIL, code="E" + EVIL, note=EVIL)
    return exporter.get_finished_spans()


def _assert_inert(out: str) -> None:
    for seq in RAW:
        assert seq not in out, f"{seq!r} reached the output"
    assert "\\x1b]0;pwned\\x07" in out or "\\\\x1b]0;pwned\\\\x07" in out


def test_terminal_on_a_tty_escapes_every_sequence(evil_spans):
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, color_system="truecolor", width=400)
    render_terminal(analyse(from_readable_spans(evil_spans)), console)
    out = buffer.getvalue()
    _assert_inert(out)
    assert "\x1b[" in out  # our own colours still work on a TTY
    assert "\\u202egnp.exe" in out and MARKUP in out  # shown, literally


def test_terminal_through_a_pipe_is_plain_and_escaped(evil_spans):
    buffer = io.StringIO()
    render_terminal(analyse(from_readable_spans(evil_spans)), Console(file=buffer, width=400))
    out = buffer.getvalue()
    _assert_inert(out)
    assert "\x1b" not in out and MARKUP in out


def test_markup_in_names_is_printed_literally(spans):
    with pytest.raises(ValueError), traced("[bold red]x[/]"):
        raise ValueError("[link=http://evil]click[/link]")
    buffer = io.StringIO()
    render_terminal(analyse(from_readable_spans(spans.get_finished_spans())), Console(file=buffer))
    out = buffer.getvalue()
    assert "[bold red]x[/]" in out and "[link=http://evil]click[/link]" in out


@pytest.mark.parametrize("render", [render_mermaid, render_dot], ids=["mermaid", "dot"])
def test_graph_languages_escape_controls(evil_spans, render):
    out = render(analyse(from_readable_spans(evil_spans)))
    assert not any(has_control(line) for line in out.splitlines())
    _assert_inert(out)


@pytest.mark.parametrize("tail", ['\\"', "\\", '"', "\\\\"])
@pytest.mark.parametrize("length", range(190, 206))
def test_dot_stays_parseable_when_a_long_name_is_cut(length, tail):
    """The cut happens before escaping, so no lone backslash escapes the closing quote."""
    name = "n" * (length - len(tail)) + tail
    span = Span("a" * 32, "b" * 16, None, name, "svc", 0, 1, error=True)
    labels = parse_dot(render_dot(analyse([span])))
    assert labels["bbbbbbbbbbbbbbbb"].startswith("n" * 150)


def test_dot_ids_are_quoted_so_odd_ids_cannot_break_out():
    span = Span('t" } digraph x {', 's"; evil', None, "op", "svc", 0, 1, error=True)
    labels = parse_dot(render_dot(analyse([span])))
    assert labels == {'s"; evil': "op | svc origin"}


def test_mermaid_traces_with_leading_zeros_get_their_own_subgraph():
    traces = ["00000000" + "1" * 24, "00000000" + "2" * 24]
    spans = [Span(t, "c" * 16, None, "op", "svc", 0, 1, error=True) for t in traces]
    out = render_mermaid(analyse(spans))
    subgraphs = [line.split("[")[0].split()[1] for line in out.splitlines() if "subgraph" in line]
    assert len(subgraphs) == 2 and len(set(subgraphs)) == 2
    nodes = {line.split("[")[0].strip() for line in out.splitlines() if '["op' in line}
    assert len(nodes) == 2  # the same span id in two traces is two nodes
    assert render_mermaid(analyse(spans)) == out  # stable


def _write_evil_file(tmp_path: Path, evil_spans) -> Path:
    path = tmp_path / "evil.json"
    path.write_text(json.dumps(spans_to_otlp(evil_spans)))
    return path


@pytest.mark.parametrize("fmt", ["terminal", "mermaid", "dot", "json", "jaeger-json", "html"])
def test_cli_through_a_pipe_prints_no_control_characters(evil_spans, tmp_path, capsys, fmt):
    path = _write_evil_file(tmp_path, evil_spans)
    assert main(["graph", str(path), "--format", fmt, "--jaeger-ui", "http://j"]) == 0
    captured = capsys.readouterr()
    for stream in (captured.out, captured.err):
        assert not any(has_control(line) for line in stream.splitlines()), stream[:2000]
    assert loads_spans(path.read_bytes()).spans[0].name.endswith(MARKUP)  # the file kept it


def test_cli_on_a_tty_escapes_every_sequence(evil_spans, tmp_path):
    path = _write_evil_file(tmp_path, evil_spans)
    leader, follower = pty.openpty()
    env = {**os.environ, "COLUMNS": "300", "TERM": "xterm-256color"}
    env.pop("NO_COLOR", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "tracectx", "graph", str(path)],
        stdout=follower,
        stderr=follower,
        stdin=subprocess.DEVNULL,
        env=env,
    )
    os.close(follower)
    chunks, deadline = [], time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 1)
        if ready:
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        elif proc.poll() is not None:
            break
    os.close(leader)
    assert proc.wait(timeout=30) == 0
    out = b"".join(chunks).decode("utf-8", "replace")
    assert "\x1b[" in out  # rich saw a terminal
    _assert_inert(out)


def test_demo_lines_are_escaped(capsys):
    from tracectx.alerting import Alert
    from tracectx_demo.run import _step
    from tracectx_demo.telemetry import Telemetry

    _step(f"  coupon rejected: BUSINESS {EVIL}")
    alert = Alert(key="k", name="burst", kind="BUSINESS", resource=EVIL, group={}, started_at=0)
    holder = type("Holder", (), {"alerts": []})()
    Telemetry._print_alert(holder, alert)  # type: ignore[arg-type]
    out = capsys.readouterr().out
    _assert_inert(out)
    assert out.count("pwned\\x07") == 2
