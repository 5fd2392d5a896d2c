"""The fleet flow page from a real running ``tracectx stream`` (the CLI in a subprocess, on the
session's tansu broker): ``/flow.html`` serves the page of the live window, with the edges and
counts ``/flow`` reports, and it renders in headless Chromium with no error; on exit,
``--flow-snapshot`` ending in ``.html`` writes the same page to a file (JSON otherwise)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.stream.test_stream_kafka import ROOT, make_traces, produce_split, settings_for
from tests.viz.html_browser import Browser
from tracectx_demo.embedded import free_port, wait_for_port
from tracectx_stream import StreamSettings

pytestmark = pytest.mark.integration


def start_stream(settings: StreamSettings, port: int, snapshot: Path, log: Path) -> Any:
    argv = [
        sys.executable, "-m", "tracectx", "stream", "--bootstrap-servers",
        settings.bootstrap_servers, "--topic", settings.topics[0], "--group", settings.group,
        "--rekey-topic", settings.rekey_topic, "--paths-topic", str(settings.paths_topic),
        "--alerts-topic", settings.alerts_topic, "--wait", "1", "--format", "otlp_proto",
        "--http", f"127.0.0.1:{port}", "--flow-snapshot", str(snapshot),
    ]  # fmt: skip
    return subprocess.Popen(argv, stdout=log.open("wb"), stderr=subprocess.STDOUT, cwd=ROOT)


def get(url: str) -> tuple[str, str]:
    """The body and content type of a GET."""
    with urllib.request.urlopen(url, timeout=10) as reply:
        return reply.read().decode("utf-8"), reply.headers["content-type"]


def wait_for_flow(base: str, edges: int, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        flow: dict[str, Any] = json.loads(get(f"{base}/flow")[0])
        if len(flow["edges"]) >= edges or time.monotonic() > deadline:
            return flow
        time.sleep(0.5)


def drawn_edges(browser: Browser) -> set[tuple[str, str, int]]:
    edges = browser.eval(
        "[...document.querySelectorAll('#flowsvg path.edge')]"
        ".map(e => [e.dataset.from, e.dataset.to, Number(e.dataset.count)])"
    )
    return {tuple(e) for e in edges}


@pytest.mark.timeout(300)
def test_flow_html_of_a_running_stream_and_its_snapshot_file(
    spans, bootstrap, make_topic, tmp_path
):
    prefix = f"f{uuid.uuid4().hex[:6]}"
    topic = make_topic(f"{prefix}.otlp", partitions=2)
    settings = settings_for(bootstrap, make_topic, prefix, topics=(topic,))
    traces, keys = make_traces(spans, 6)
    port, snapshot, log = free_port(), tmp_path / "fleet.html", tmp_path / "stream.log"
    proc = start_stream(settings, port, snapshot, log)
    browser = Browser(tmp_path / "profile")
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_port(port, 60, proc)
        produce_split(bootstrap, topic, traces)
        flow = wait_for_flow(base, len(keys), timeout=150)
        assert len(flow["edges"]) == 6, log.read_text()[-3000:]
        want = {(e["from"], e["to"], e["count"]) for e in flow["edges"]}
        assert all(f.endswith(": charge-" + t.rsplit("-", 1)[1]) for f, t, _ in want)

        page, content_type = get(f"{base}/flow.html")
        assert content_type == "text/html; charset=utf-8"
        assert "Content-Security-Policy" in page and 'id="data">' in page
        browser.open_url(f"{base}/flow.html")
        assert browser.errors() == []
        assert browser.eval("document.title") == "tracectx — fleet error flow"
        assert drawn_edges(browser) == want
        labels = browser.eval(
            "[...document.querySelectorAll('#flowsvg text.cnt')].map(t => t.textContent)"
        )
        assert labels.count("×1") == 6
        assert "error paths 6" in browser.eval("document.getElementById('summary').textContent")
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
    try:
        assert proc.returncode == 0, log.read_text()[-3000:]
        assert snapshot.read_text(encoding="utf-8").startswith("<!doctype html>")
        browser.open(snapshot)
        assert browser.errors() == []
        assert drawn_edges(browser) == want
    finally:
        browser.close()


def test_flow_snapshot_path_picks_the_format(tmp_path):
    """``--flow-snapshot`` writes the page for ``.html`` (any case), JSON for anything else."""
    from tracectx_stream.command import _write_flow_snapshot

    flow = {"window_s": 3600.0, "edges": [{"from": "a: x", "to": "b: y", "count": 2,
            "kinds": {"BUSINESS": 2}}], "origins": [], "outcomes": {}}  # fmt: skip
    for name in ("flow.json", "flow", "FLOW.HTML", "flow.html"):
        _write_flow_snapshot(tmp_path / name, flow)
    assert json.loads((tmp_path / "flow.json").read_text()) == flow
    assert json.loads((tmp_path / "flow").read_text()) == flow
    for name in ("FLOW.HTML", "flow.html"):
        page = (tmp_path / name).read_text(encoding="utf-8")
        assert page.startswith("<!doctype html>") and "fleet error flow" in page
