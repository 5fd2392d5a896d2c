"""A big trace stays light: only the rows in view are in the DOM, scrolling swaps them, folding
is index arithmetic, and the error rows deep in the trace are reachable; a 100k-span trace with
about 3,900 error paths makes a page under 10 MB (its data packed) with bounded memory, which
opens in Chromium and shows a deep span's stack."""

from __future__ import annotations

import gc
import tracemalloc

import pytest

from tests.viz.big_trace import big_trace
from tests.viz.html_browser import Browser
from tracectx.viz import analyse
from tracectx.viz.model import Span
from tracectx.viz.renderers import render_html

pytestmark = pytest.mark.integration

T = "c" * 32
N = 20_000


def _wide_trace() -> list[Span]:
    """A root with 200 handlers of 99 queries each; every 50th handler's last query fails."""
    spans = [Span(T, f"{0:016x}", None, "GET /batch", "gateway", 0, 10**10, kind="server")]
    sid = 1
    for h in range(200):
        hid = f"{sid:016x}"
        spans.append(
            Span(
                T,
                hid,
                spans[0].span_id,
                f"handle {h}",
                f"svc-{h % 9}",
                h * 10**7,
                h * 10**7 + 10**7,
            )
        )
        sid += 1
        for q in range(99):
            fail = h % 50 == 0 and q == 98
            spans.append(
                Span(
                    T,
                    f"{sid:016x}",
                    hid,
                    f"query {q}",
                    "db",
                    h * 10**7 + q * 10**5,
                    h * 10**7 + q * 10**5 + 9 * 10**4,
                    error=fail,
                )
            )
            sid += 1
    return spans[:N]


FRAMES = "new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))"  # two paints


def test_only_the_rows_in_view_are_built(tmp_path):
    analyses = analyse(_wide_trace())
    page = tmp_path / "big.html"
    page.write_text(render_html(analyses, full=True), encoding="utf-8")
    browser = Browser(tmp_path / "profile")
    try:
        browser.open(page)
        assert browser.errors() == []
        assert browser.eval("state.vis.length") == N
        in_dom = "document.querySelectorAll('#rows .row').length"
        assert 0 < browser.eval(in_dom) < 150
        first = browser.eval("document.querySelector('#rows .row').dataset.row")
        browser.eval("document.getElementById('scroller').scrollTop = 24 * 15000")
        browser.eval(FRAMES)
        rows = browser.eval("[...document.querySelectorAll('#rows .row')].map(r => +r.dataset.row)")
        assert str(first) != str(rows[0]) and 14_900 < max(rows) < 15_100 and len(rows) < 150
        # fold the root: one row left; unfold: all back
        browser.eval("document.getElementById('scroller').scrollTop = 0; paint()")
        browser.eval(FRAMES)  # the scroll repaints the rows: click the new ones, not the old
        browser.click("#rows .row[data-row='0'] .tog")
        assert browser.eval("state.vis.length") == 1
        browser.eval(FRAMES)
        browser.click("#rows .row[data-row='0'] .tog")
        assert browser.eval("state.vis.length") > 1
        # a path card takes you to its origin deep in the trace, drawn and highlighted
        browser.eval("document.querySelectorAll('#pathlist .path')[3].click()")
        origin = browser.eval("document.querySelector('#rows .row.cur')")
        assert browser.eval("document.querySelector('#rows .row.cur').dataset.role") == "origin"
        assert origin is not None and browser.eval("!!document.querySelector('#overlay .epath')")
        assert browser.errors() == []
    finally:
        browser.close()


def test_a_100k_span_trace_makes_a_small_page_that_opens(tmp_path):
    [a] = analyse(big_trace(100_000))
    assert 3_500 < len(a.errors) < 4_500
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        html = render_html([a])
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    assert len(html.encode()) <= 10_000_000  # was 21.4 MB
    assert peak <= 160_000_000, f"rendering took {peak / 1e6:.0f} MB"
    page = tmp_path / "big.html"
    page.write_text(html, encoding="utf-8")
    del html
    browser = Browser(tmp_path / "profile", 1600, 1200)
    try:
        browser.open(page)
        assert browser.errors() == []
        assert browser.eval("state.trace.n") == 100_000
        assert browser.eval("state.trace.paths.length") == len(a.errors)
        assert browser.eval("document.querySelectorAll('#pathlist .path').length") == 100
        # thousands of paths end in a few spans near the top: only the best 300 are drawn
        assert 0 < browser.eval("document.querySelectorAll('#overlay .epath').length") <= 300
        # the last card is an error deep in the trace; its span's details come packed
        browser.eval("[...document.querySelectorAll('#pathlist .path')].at(-1).click()")
        browser.eval(FRAMES)
        for _ in range(200):
            if browser.eval("!!document.querySelector('#details pre.stack')"):
                break
            browser.eval("new Promise(r => setTimeout(r, 50))")
        stack = browser.eval("document.querySelector('#details pre.stack').textContent")
        assert "ConnectionError: refused" in stack
        assert browser.eval("!!document.querySelector('#rows .row.cur')")
        assert browser.errors() == []
    finally:
        browser.close()
