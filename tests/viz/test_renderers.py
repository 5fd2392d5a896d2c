"""Renderers: Mermaid, DOT, JSON, Jaeger links/export, terminal, and the HTML page in Chromium."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from rich.console import Console

from tracectx import ErrorKind, new_error, traced
from tracectx.cli import main
from tracectx.file_exporter import spans_to_otlp
from tracectx.viz import analyse, loads_spans
from tracectx.viz.renderers import (
    annotated_jaeger_json,
    jaeger_link,
    render_dot,
    render_html,
    render_mermaid,
    render_terminal,
    to_json_data,
)
from tracectx.viz.sources.memory import from_readable_spans

HOSTILE = '<img src=x onerror="document.title=\'pwned\'"></script><script>document.title="pwned2"</script>'


@pytest.fixture
def analyses(pipeline_spans):
    return analyse(pipeline_spans)


@pytest.fixture
def hostile(spans):
    with pytest.raises(Exception), traced("root"), traced(HOSTILE):
        raise new_error(ErrorKind.BUSINESS, HOSTILE, code=HOSTILE, note=HOSTILE)
    return analyse(from_readable_spans(spans.get_finished_spans()))


def test_mermaid_marks_origin_and_escapes(analyses, hostile):
    text = render_mermaid(analyses)
    assert text.startswith("flowchart TD") and "class s" in text and " origin" in text
    assert "-.->|link|" in text
    hostile_text = render_mermaid(hostile)
    assert "<img" not in hostile_text and "#lt;img" in hostile_text


def test_dot_is_valid_shape(analyses, hostile):
    text = render_dot(analyses)
    assert text.startswith("digraph tracectx {") and text.rstrip().endswith("}")
    assert "style=dashed" in text
    assert '\\"' in render_dot(hostile)


def test_json_schema_is_stable(analyses):
    data = json.loads(json.dumps(to_json_data(analyses, "http://jaeger:16686")))
    assert data["schema"] == "tracectx.graph/v1"
    trace = data["traces"][0]
    assert set(trace) >= {
        "trace_id",
        "jaeger_link",
        "spans",
        "errors",
        "async_edges",
        "retries",
        "problems",
    }
    assert set(trace["errors"][0]) >= {
        "error_id",
        "kind",
        "origin",
        "propagators",
        "absorber",
        "escaped",
    }
    assert data["flow"]["origins"]


def test_jaeger_deep_link_and_annotated_export(analyses):
    [a] = analyses
    link = jaeger_link("http://localhost:16686/", a)
    assert link.startswith(f"http://localhost:16686/trace/{a.trace_id}?uiFind=")
    for err in a.errors:
        assert err.origin in link
    exported = annotated_jaeger_json(analyses)
    roles = {
        t["value"]
        for s in exported["data"][0]["spans"]
        for t in s["tags"]
        if t["key"] == "tracectx.error.role"  # the vocabulary the README tells users to search
    }
    assert {"origin", "absorbed"} <= roles <= {"origin", "propagated", "absorbed"}
    again = analyse(loads_spans(json.dumps(exported)))
    assert len(again[0].errors) == len(a.errors)


def test_terminal_shows_paths_without_markup_injection(analyses, hostile):
    console = Console(record=True, width=200)
    render_terminal(analyses + hostile, console)
    out = console.export_text()
    assert "✖ origin" in out and "E_FUNDS" in out and "✔ absorbed" in out
    assert "<img src=x" in out  # shown literally, as text


def test_cli_graph_every_format(spans, tmp_path, capsys):
    from tests.viz.conftest import produce_pipeline

    produce_pipeline()
    src = tmp_path / "spans.json"
    src.write_text(json.dumps(spans_to_otlp(spans.get_finished_spans())))
    for fmt in ("mermaid", "dot", "json", "jaeger-json", "html"):
        out = tmp_path / f"g.{fmt}"
        assert main(["graph", str(src), "--format", fmt, "-o", str(out)]) == 0
        assert out.stat().st_size > 100
    assert main(["graph", str(src)]) == 0
    assert "origin" in capsys.readouterr().out
    assert main(["graph", str(tmp_path / "missing.json")]) == 1  # nothing usable: an error
    assert "missing.json: No such file" in capsys.readouterr().err


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.integration
class TestHtmlInChromium:
    def _dom(self, html: str, tmp_path) -> str:
        assert CHROMIUM, "chromium is not installed (scripts/setup.sh installs it)"
        page = tmp_path / "page.html"
        page.write_text(html, encoding="utf-8")
        result = subprocess.run(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={tmp_path / 'profile'}",
                "--virtual-time-budget=3000",
                "--dump-dom",
                page.as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr[-2000:]
        return result.stdout

    def test_page_renders_and_highlights_origin(self, analyses, tmp_path):
        dom = self._dom(render_html(analyses), tmp_path)
        assert 'data-ready="1"' in dom
        assert 'class="span origin"' in dom and "debit" in dom
        assert "Error flow across traces" in dom
        assert 'data-role="escaped"' in dom or not any(e.escaped for e in analyses[0].errors)

    def test_strongest_role_wins_in_the_page(self, spans, tmp_path):
        """A span that absorbed one error and let another escape shows as escaped."""
        with pytest.raises(Exception), traced("request"):
            try:
                with traced("first"):
                    raise ValueError("absorbed")
            except ValueError:
                pass
            with traced("second"):
                raise ValueError("escapes")
        dom = self._dom(
            render_html(analyse(from_readable_spans(spans.get_finished_spans()))), tmp_path
        )
        assert 'data-role="escaped"' in dom.split(">request<")[0].rsplit("<span", 1)[1]

    def test_hostile_span_names_execute_nothing(self, hostile, tmp_path):
        html = render_html(hostile)
        assert "<img" not in html.split('id="data">')[1].split("</script>")[0]
        dom = self._dom(html, tmp_path)
        assert 'data-ready="1"' in dom
        assert "pwned" not in dom.split("<title>")[1].split("</title>")[0]
        assert "&lt;img src=x" in dom  # rendered as text
        assert "<img" not in dom
