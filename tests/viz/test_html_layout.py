"""The page as an SRE reads it, in a real headless Chromium at 1600x1200: on the real demo's page
(`tracectx demo`) and on a 100-span trace, no two labels overlap and no span kind, service,
error kind, retry or outcome text is cut; the FATAL that failed the request is the first card and
a recovered retry the last, folded; the demo's 3-second Kafka hop is a break in the axis, not a
squeeze; ticks sit at round values; drag and wheel zoom, the minimap shows the whole trace; the
name column resizes; exceptions are marked on the bar where they happened."""

from __future__ import annotations

import itertools
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.viz.big_trace import big_trace
from tests.viz.html_browser import Browser
from tracectx.viz import analyse
from tracectx.viz.model import Span, SpanEvent
from tracectx.viz.renderers import render_html

pytestmark = pytest.mark.integration

# Every label box on the page: name column, labels beside the bars, axis ticks. Two boxes overlap
# when they share more than half a pixel each way.
OVERLAPS = """(() => {
  const sel = '#rows .row .sk, #rows .row .span, #rows .row .svc, #rows .row .asyncmark,'
    + ' #rows .row .lab, #axis .tick';
  const boxes = [...document.querySelectorAll(sel)].map((e) => [e, e.getBoundingClientRect()])
    .filter(([, r]) => r.width > 0);
  const out = [];
  for (let a = 0; a < boxes.length; a++) for (let b = a + 1; b < boxes.length; b++) {
    const [ea, ra] = boxes[a], [eb, rb] = boxes[b];
    if (ea.contains(eb) || eb.contains(ea)) continue;
    if (Math.min(ra.right, rb.right) - Math.max(ra.left, rb.left) > 0.5
        && Math.min(ra.bottom, rb.bottom) - Math.max(ra.top, rb.top) > 0.5)
      out.push(ea.textContent + ' | ' + eb.textContent);
  }
  return out;
})()"""

# Kind, service, error kind, retry, outcome and duration texts: whole (no ellipsis, nothing
# scrolled away) and inside the cell that clips them.
CUT = """(() => {
  const sel = '#rows .row .sk, #rows .row .svc, #rows .row .lab .badge, #rows .row .lab .retry,'
    + ' #rows .row .lab .outc, #rows .row .lab .dur, #pathlist .path .kind, #pathlist .path .outcome';
  const out = [];
  for (const e of document.querySelectorAll(sel)) {
    const r = e.getBoundingClientRect();
    if (r.width === 0 && !e.closest('.folded')) { out.push('hidden: ' + e.textContent); continue; }
    if (e.closest('.folded')) continue;
    if (e.scrollWidth > e.clientWidth + 1) out.push('scrolled: ' + e.textContent);
    const clip = e.closest('.name, .lane, #pathlist');
    const c = clip.getBoundingClientRect();
    if (r.left < c.left - 0.5 || r.right > c.right + 0.5) out.push('clipped: ' + e.textContent);
  }
  return out;
})()"""

FRAMES = "new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))"


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    b = Browser(tmp_path_factory.mktemp("chromium") / "profile", 1600, 1200)
    yield b
    b.close()


@pytest.fixture(scope="module")
def demo_page(tmp_path_factory) -> Path:
    """The page `tracectx demo` writes (real Celery worker, real Kafka-protocol broker)."""
    out = tmp_path_factory.mktemp("demo")
    run = subprocess.run(
        [sys.executable, "-m", "tracectx", "demo", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return out / "errors.html"


def _open(browser: Browser, page: Path) -> None:
    browser.open(page)
    browser.eval(FRAMES)
    assert browser.errors() == []


def _write(tmp_path: Path, spans: list[Span], **kw) -> Path:
    page = tmp_path / "page.html"
    page.write_text(render_html(analyse(spans), **kw), encoding="utf-8")
    return page


def _ticks(browser: Browser) -> list[str]:
    return browser.eval(
        "[...document.querySelectorAll('#axis .tick:not(.brk)')]"
        ".sort((a, b) => a.offsetLeft - b.offsetLeft).map(t => t.textContent)"
    )


def _round_steps(labels: list[str]) -> None:
    """Tick labels of one stretch: one unit, evenly spaced by 1, 2 or 5 times a power of ten."""
    values = []
    for text in labels:
        number, unit = text.split(" ")
        values.append(float(number) * {"s": 1e6, "ms": 1e3, "µs": 1.0}[unit])
    steps = {round(b - a, 6) for a, b in itertools.pairwise(values)}
    assert len(steps) == 1, labels
    [step] = steps
    mantissa = step / 10 ** int(f"{step:e}".split("e")[1])
    assert round(mantissa, 6) in (1.0, 2.0, 5.0), labels


def _assert_clean(browser: Browser) -> None:
    assert browser.eval(OVERLAPS) == []
    assert browser.eval(CUT) == []


def test_demo_page_reads_right(browser, demo_page):
    _open(browser, demo_page)
    _assert_clean(browser)
    cards = browser.eval(
        "[...document.querySelectorAll('#pathlist .path')].map(c => [c.querySelector('.kind')"
        ".textContent, c.dataset.outcome, c.classList.contains('folded'), c.textContent])"
    )
    assert cards[0][:2] == ["FATAL", "escaped"] and "E_TEMPLATES" in cards[0][3]
    # above the fold: the first card is on screen without scrolling
    assert browser.eval("document.querySelector('#pathlist .path').getBoundingClientRect().top") < (
        400
    )
    folded = [c for c in cards if c[2]]
    assert folded and all("recovered" in c[3] for c in folded)
    assert cards[-len(folded) :] == folded  # recovered retries last
    # the Kafka DLQ hop 3 s later is a break: the request's own bar is wide, not squeezed
    widths = browser.eval(
        "(() => { const r = document.querySelector('#rows .row[data-row=\"0\"]');"
        " return [r.querySelector('.bar').getBoundingClientRect().width,"
        " r.querySelector('.lane').getBoundingClientRect().width]; })()"
    )
    assert widths[0] > 0.3 * widths[1]  # was 3 %: the hop squeezed it into the first pixels
    breaks = browser.eval(
        "[...document.querySelectorAll('#axis .tick.brk')].map(t => t.textContent)"
    )
    assert any(re.fullmatch(r"⋯ \d\.\d\d s", b) for b in breaks), breaks
    first_stretch = browser.eval(
        "(() => { const b = document.querySelector('#axis .brkband').offsetLeft;"
        " return [...document.querySelectorAll('#axis .tick:not(.brk)')]"
        ".filter(t => t.offsetLeft < b).map(t => t.textContent); })()"
    )
    assert len(first_stretch) >= 3
    _round_steps(first_stretch)
    # the failed attempt's exception is marked on its bar
    marks = browser.eval(
        "[...document.querySelectorAll('#rows .row .mk.mx')].map(m => { const bar ="
        " m.parentElement.querySelector('.bar').getBoundingClientRect(), r = m.getBoundingClientRect();"
        " return [r.left + r.width / 2 - bar.left, bar.right - (r.left + r.width / 2)]; })"
    )
    assert marks and all(a >= -0.5 and b >= -0.5 for a, b in marks)
    # clicking the folded group shows the recovered retries
    browser.click("#pathlist .rgroup")
    assert browser.eval("document.querySelectorAll('#pathlist .path.folded').length") == 0
    assert browser.errors() == []


def test_a_100_span_trace_has_no_overlap_or_cut_label(browser, tmp_path):
    spans = big_trace(100, seed=3, failing=0.25)
    for k, span in enumerate(spans[1:30], 1):  # long names and services, retries on some
        span.name = f"{span.name} with a rather long operation name {k}"
        if k % 7 == 0:
            span.service = "payments-settlement-reconciliation"
    _open(browser, _write(tmp_path, spans, full=True))
    assert browser.eval("document.querySelectorAll('#rows .row:not(.gap)').length") == 100
    _assert_clean(browser)
    for width in (1280, 1100):  # narrower windows: still whole, still apart
        browser.call(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=1200,
            deviceScaleFactor=1,
            mobile=False,
        )
        browser.eval(FRAMES)
        browser.eval(FRAMES)
        _assert_clean(browser)
    browser.call(
        "Emulation.setDeviceMetricsOverride",
        width=1600,
        height=1200,
        deviceScaleFactor=1,
        mobile=False,
    )


def test_ticks_are_round_on_a_five_microsecond_trace(browser, tmp_path):
    t = "d" * 32
    spans = [
        Span(t, "0000000000000001", None, "GET /health", "api", 0, 5_000, kind="server"),
        Span(t, "0000000000000002", "0000000000000001", "check", "api", 1_300, 4_100),
    ]
    _open(browser, _write(tmp_path, spans))
    ticks = _ticks(browser)
    assert ticks[0] == "0 µs" and len(ticks) >= 3 and len(set(ticks)) == len(ticks)
    _round_steps(ticks)


def _drag(browser: Browser, selector: str, a: float, b: float) -> None:
    """A real mouse drag across `selector` from share `a` to share `b` of its width."""
    x0, x1, y = browser.eval(
        f"(() => {{ const r = document.querySelector('{selector}').getBoundingClientRect();"
        f" return [r.left + r.width * {a}, r.left + r.width * {b}, r.top + r.height / 2]; }})()"
    )
    browser.call(
        "Input.dispatchMouseEvent", type="mousePressed", x=x0, y=y, button="left", clickCount=1
    )
    for k in range(1, 6):
        x = x0 + (x1 - x0) * k / 5
        browser.call("Input.dispatchMouseEvent", type="mouseMoved", x=x, y=y, button="left")
    browser.call(
        "Input.dispatchMouseEvent", type="mouseReleased", x=x1, y=y, button="left", clickCount=1
    )
    browser.eval(FRAMES)


def _gap_trace() -> list[Span]:
    t = "e" * 32
    root = "0000000000000001"
    spans = [Span(t, root, None, "POST /orders", "api", 0, 100_000_000, kind="server")]
    for k in range(8):
        spans.append(
            Span(
                t,
                f"{k + 2:016x}",
                root,
                f"step {k}",
                "api",
                k * 10_000_000,
                k * 10_000_000 + 8_000_000,
            )
        )
    failing = spans[3]
    failing.error = True
    failing.events = [SpanEvent("exception", {"exception.type": "E"}, time_ns=25_000_000)]
    spans.append(
        Span(
            t,
            "00000000000000ff",
            root,
            "process orders.dlq",
            "worker",
            3_200_000_000,
            3_210_000_000,
            kind="consumer",
        )
    )
    return spans


def test_zoom_by_drag_and_wheel_and_the_minimap(browser, tmp_path):
    _open(browser, _gap_trace_page(tmp_path))
    view = "state.view.map(v => Math.round(v))"
    whole = browser.eval(view)
    assert browser.eval("!!document.querySelector('#overlay .brk')")
    # the minimap draws the whole trace
    painted = browser.eval(
        "(() => { const c = document.getElementById('minimap'), d = c.getContext('2d')"
        ".getImageData(0, 0, c.width, c.height).data; let n = 0;"
        " for (let k = 3; k < d.length; k += 4) if (d[k]) n++; return n; })()"
    )
    assert painted > 100
    _drag(browser, "#axis .ticks", 0.2, 0.4)
    zoomed = browser.eval(view)
    assert whole[0] < zoomed[0] < zoomed[1] < whole[1]
    assert browser.eval("!document.getElementById('zoomreset').hidden")
    assert browser.eval("!document.getElementById('miniwin').hidden")
    # ticks are still round in the zoomed view; a span out of view says which way it is; the
    # lanes' drawing stays out of the name column
    _round_steps(_ticks(browser))
    _assert_clean(browser)
    labels = browser.eval("[...document.querySelectorAll('#rows .lab')].map(l => l.textContent)")
    assert any(t.endswith("▸") for t in labels), labels
    assert browser.eval("document.querySelector('#overlay > g').getAttribute('clip-path')")
    # wheel on the minimap zooms back out around the pointer
    x, y = browser.eval(
        "(() => { const r = document.getElementById('miniwrap').getBoundingClientRect();"
        " return [r.left + r.width * 0.3, r.top + r.height / 2]; })()"
    )
    for _ in range(3):
        browser.call("Input.dispatchMouseEvent", type="mouseWheel", x=x, y=y, deltaX=0, deltaY=120)
    browser.eval(FRAMES)
    wider = browser.eval(view)
    assert wider[1] - wider[0] > zoomed[1] - zoomed[0]
    # a drag on the minimap picks the range there
    _drag(browser, "#miniwrap", 0.05, 0.15)
    picked = browser.eval(view)
    assert picked[1] - picked[0] < wider[1] - wider[0]
    browser.click("#zoomreset")
    browser.eval(FRAMES)
    assert browser.eval(view) == whole
    # a drag across the lanes zooms too, and leaves the rows' selection alone
    _drag(browser, "#scroller", 0.6, 0.8)
    lanes = browser.eval(view)
    assert whole[0] < lanes[0] < lanes[1] < whole[1]
    assert browser.eval("state.row") == -1
    browser.click("#zoomreset")
    browser.eval(FRAMES)
    # a plain click on a span still selects it (a click is not a drag)
    browser.click("#rows .row[data-role=origin] .span")
    assert browser.eval("state.row") == int(
        browser.eval("document.querySelector('#rows .row[data-role=origin]').dataset.row")
    )
    assert browser.errors() == []


def _gap_trace_page(tmp_path: Path) -> Path:
    return _write(tmp_path, _gap_trace(), full=True)


def test_name_column_resizes(browser, tmp_path):
    _open(browser, _gap_trace_page(tmp_path))
    lane = "document.querySelector('#rows .row .lane').getBoundingClientRect().left"
    before = browser.eval(lane)
    x, y = browser.eval(
        "(() => { const r = document.getElementById('namegrip').getBoundingClientRect();"
        " return [r.left + r.width / 2, r.top + r.height / 2]; })()"
    )
    browser.call(
        "Input.dispatchMouseEvent", type="mousePressed", x=x, y=y, button="left", clickCount=1
    )
    browser.call("Input.dispatchMouseEvent", type="mouseMoved", x=x + 150, y=y, button="left")
    browser.call(
        "Input.dispatchMouseEvent",
        type="mouseReleased",
        x=x + 150,
        y=y,
        button="left",
        clickCount=1,
    )
    deadline = time.monotonic() + 10
    while browser.eval(lane) < before + 149 and time.monotonic() < deadline:
        browser.eval(FRAMES)
    assert browser.eval(lane) == pytest.approx(before + 150, abs=1)
    _assert_clean(browser)


def test_zoom_gestures_on_a_page_without_traces(browser, tmp_path):
    page = tmp_path / "empty.html"
    page.write_text(render_html([]), encoding="utf-8")
    _open(browser, page)
    x, y = browser.eval(
        "(() => { const r = document.querySelector('#axis .ticks').getBoundingClientRect();"
        " return [r.left + r.width / 2, r.top + r.height / 2]; })()"
    )
    browser.call("Input.dispatchMouseEvent", type="mouseWheel", x=x, y=y, deltaX=0, deltaY=-120)
    _drag(browser, "#axis .ticks", 0.2, 0.4)
    _drag(browser, "#miniwrap", 0.2, 0.4)
    assert browser.errors() == []
