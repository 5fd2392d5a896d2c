"""``tracectx graph --check-propagation`` on span files: a real two-process app whose one hop
is deliberately uninstrumented (tests/viz/two_process_app.py), and generated traffic."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.viz.generator_broken import generate_broken
from tracectx.cli import main
from tracectx.file_exporter import OTLPJsonFileExporter

ROOT = Path(__file__).resolve().parents[2]
CHECKOUTS = 6


def _wait_for(path: Path, timeout: float = 60.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text():
            return path.read_text()
        time.sleep(0.05)
    raise AssertionError(f"{path} never written")


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory):
    """Span files of a server and a client process (real processes, loopback, free port)."""
    where = tmp_path_factory.mktemp("two_process")
    server_spans, client_spans, port_file = (
        where / "server.otlp.jsonl",
        where / "client.otlp.jsonl",
        where / "port",
    )
    app = [sys.executable, "-m", "tests.viz.two_process_app"]
    server = subprocess.Popen([*app, "serve", str(server_spans), str(port_file)], cwd=ROOT)
    try:
        port = int(_wait_for(port_file))
        subprocess.run(
            [*app, "call", str(client_spans), str(port), str(CHECKOUTS)],
            cwd=ROOT,
            check=True,
            timeout=120,
        )
        httpx.get(f"http://127.0.0.1:{port}/shutdown", timeout=30)
        server.wait(timeout=60)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    return client_spans, server_spans


def test_the_finding_names_the_uninstrumented_hop(two_processes, tmp_path):
    client, server = two_processes
    out = tmp_path / "graph.json"
    argv = ["graph", str(client), str(server), "--check-propagation", "--format", "json"]
    assert main([*argv, "-o", str(out)]) == 0
    check = json.loads(out.read_text())["propagation"]
    dropped = [f for f in check["findings"] if f["kind"] == "dropped-hop"]
    assert len(dropped) == CHECKOUTS and len(check["findings"]) == CHECKOUTS
    for f in dropped:
        assert f["hop"] == "http"
        assert (f["caller"]["service"], f["caller"]["operation"]) == ("checkout", "GET")
        assert (f["callee"]["service"], f["callee"]["operation"]) == (
            "stock-and-pay",
            "GET /stock/{n}",
        )
        assert any(e.startswith("path /stock/") for e in f["evidence"])
    [row] = check["health"]
    assert (row["caller"], row["callee"], row["hop"]) == ("checkout", "stock-and-pay", "http")
    assert (row["seen"], row["connected"], row["broken"]) == (2 * CHECKOUTS, CHECKOUTS, CHECKOUTS)
    assert len(check["split_traces"]) == CHECKOUTS


def test_the_terminal_shows_the_section(two_processes, capsys):
    client, server = two_processes
    assert main(["graph", str(client), str(server), "--check-propagation"]) == 0
    out = capsys.readouterr().out
    assert "checkout -> stock-and-pay over http: 12 seen, 6 connected, 6 broken (50% broken)" in out
    assert (
        out.count("checkout: GET -> stock-and-pay: GET /stock/{n} over http: lost the context") == 6
    )


def test_generated_traffic_joins_error_paths_in_the_json(tmp_path):
    spans = tmp_path / "spans.otlp.jsonl"
    exporter = OTLPJsonFileExporter(spans)
    run = generate_broken(seconds=5, seed=3, drop=0.5, also=exporter)
    exporter.shutdown()
    out = tmp_path / "graph.json"
    assert (
        main(["graph", str(spans), "--check-propagation", "--format", "json", "-o", str(out)]) == 0
    )
    doc = json.loads(out.read_text())
    lost = sum(h.dropped for h in run.hops)
    assert len([f for f in doc["propagation"]["findings"] if f["kind"] != "clock-skew"]) == lost
    inferred = [
        e
        for t in doc["traces"]
        for e in t["errors"]
        if any("inferred: " in x for x in e["evidence"])
    ]
    assert inferred and all(not e["exact"] for e in inferred)


@pytest.mark.integration
def test_the_page_shows_the_section_in_chromium(two_processes, tmp_path):
    from tests.viz.html_browser import Browser

    client, server = two_processes
    page = tmp_path / "graph.html"
    argv = ["graph", str(client), str(server), "--check-propagation", "--format", "html"]
    assert main([*argv, "-o", str(page)]) == 0
    browser = Browser(tmp_path / "profile")
    try:
        browser.open(page)
        text = browser.eval("document.querySelector('#propagation').innerText")
        assert "checkout: GET -> stock-and-pay: GET /stock/{n} over http: lost the context" in text
        assert browser.eval("document.querySelectorAll('#propagation tbody tr').length") == 1
        assert browser.errors() == []  # the page's script and CSP are untouched
    finally:
        browser.close()


def test_span_text_in_the_section_is_escaped():
    from tracectx.viz.model import Span
    from tracectx.viz.propagation_check import check_propagation
    from tracectx.viz.renderers import render_html
    from tracectx.viz.renderers.propagation import add_propagation_section

    orphan = Span("a" * 32, "s1", "gone", "<script>alert(1)</script>", "svc\x1b[2J", 0, 10)
    page = add_propagation_section(render_html([]), check_propagation([orphan], now_ns=10**12))
    section = page[page.index('<section id="propagation">') : page.index("</main>")]
    assert "<script>" not in section and "\x1b" not in section
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in section


def test_the_guide_command_works_as_printed(two_processes, tmp_path):
    """docs/visualiser.md's --check-propagation block, run as printed on the two processes' files."""
    import re
    import shutil

    guide = (ROOT / "docs" / "visualiser.md").read_text()
    section = guide[guide.index("## Where the trace broke") :]
    command, shown = re.findall(r"```(?:bash)?\n(.*?)```", section, flags=re.S)[:2]
    client, server = two_processes
    shutil.copy(client, tmp_path / "client.otlp.jsonl")
    shutil.copy(server, tmp_path / "server.otlp.jsonl")
    tracectx = Path(sys.executable).with_name("tracectx")
    argv = command.strip().split()
    assert argv[0] == "tracectx"
    done = subprocess.run(
        [str(tracectx), *argv[1:]], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    for line in shown.splitlines()[:5]:  # the lines without a trace id or a path
        assert line in done.stdout


@pytest.mark.integration
def test_kafka_records_sent_without_headers_are_the_broken_hop(bootstrap, make_topic, tmp_path):
    """A producer process whose propagator writes nothing (``OTEL_PROPAGATORS=none``) next to
    one that propagates, one consumer process, on the real broker: the finding names the
    headerless records' sends, and the health table counts checkout -> payments over Kafka."""
    import os

    topic = make_topic()
    app = [sys.executable, "-m", "tests.viz.kafka_two_process_app"]
    producer, consumer = tmp_path / "producer.otlp.jsonl", tmp_path / "consumer.otlp.jsonl"
    for tag, env in (("kept", {}), ("lost", {"OTEL_PROPAGATORS": "none"})):
        subprocess.run(
            [*app, "produce", bootstrap, topic, str(producer), "4", tag],
            cwd=ROOT,
            check=True,
            timeout=120,
            env={**os.environ, **env},
        )
    subprocess.run(
        [*app, "consume", bootstrap, topic, str(consumer), "8"], cwd=ROOT, check=True, timeout=180
    )
    out = tmp_path / "graph.json"
    argv = ["graph", str(producer), str(consumer), "--check-propagation", "--format", "json"]
    assert main([*argv, "-o", str(out)]) == 0
    check = json.loads(out.read_text())["propagation"]
    dropped = [f for f in check["findings"] if f["kind"] == "dropped-hop"]
    assert len(dropped) == 4 and len(check["findings"]) == 4, check["findings"]
    for f in dropped:
        assert f["hop"] == "kafka"
        assert (f["caller"]["service"], f["callee"]["service"]) == ("checkout", "payments")
        assert any(e.startswith("message key order-lost-") for e in f["evidence"])
    [row] = [r for r in check["health"] if r["hop"] == "kafka"]
    assert (row["caller"], row["callee"]) == ("checkout", "payments")
    assert (row["seen"], row["connected"], row["broken"]) == (8, 4, 4)


def test_exports_keep_the_traces_as_read(two_processes, tmp_path, capsys):
    """jaeger-json (and mermaid, dot) write the traces as read, not joined: a note says where
    the check is shown."""
    client, server = two_processes
    out = tmp_path / "annotated.json"
    argv = ["graph", str(client), str(server), "--check-propagation", "--format", "jaeger-json"]
    assert main([*argv, "-o", str(out)]) == 0
    assert (
        "--check-propagation is shown in the terminal, json, html formats"
        in capsys.readouterr().err
    )
    assert len(json.loads(out.read_text())["data"]) == 2 * CHECKOUTS  # the split traces apart
