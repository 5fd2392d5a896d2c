"""Hostile text in every field a span file controls — span and service names, attribute values
and keys, exception messages, event attributes, metadata, ids — executes nothing in the page,
is shown as text, and no control character is obeyed."""

from __future__ import annotations

from pathlib import Path

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.viz.html_browser import Browser
from tracectx import ErrorKind, new_error, traced
from tracectx.viz import analyse
from tracectx.viz.model import Span, SpanEvent
from tracectx.viz.renderers import render_html
from tracectx.viz.sources.memory import from_readable_spans

pytestmark = pytest.mark.integration

XSS = [
    "<img src=x onerror=\"window.pwned=1;document.title='pwned'\">",
    "</script><script>window.pwned=2</script>",
    '"><svg onload=window.pwned=3>',
    "javascript:window.pwned=4",
    "</style><style>*{display:none}</style>",
]
EVIL = " ".join(XSS) + " \u202egnp.exe \x1b]0;t\x07"


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    b = Browser(tmp_path_factory.mktemp("chromium") / "profile")
    yield b
    b.close()


@pytest.fixture
def evil(spans):
    """Real SDK spans: hostile service, span name, message, code, metadata and attributes."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "svc" + EVIL}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("evil")
    with pytest.raises(Exception), tracer.start_as_current_span("root"):
        with tracer.start_as_current_span(EVIL, attributes={EVIL: EVIL}) as span:
            span.add_event(EVIL, {EVIL: EVIL})
            with traced("inner" + EVIL):
                raise new_error(ErrorKind.FATAL, "msg" + EVIL, code="E" + EVIL, note=EVIL)
    both = [*exporter.get_finished_spans(), *spans.get_finished_spans()]  # traced() uses the global
    return analyse(from_readable_spans(both))


def _assert_inert(browser: Browser) -> None:
    assert browser.errors() == []  # no CSP violation either: nothing tried to run
    assert browser.eval("window.pwned === undefined")
    assert browser.eval("document.title") == "tracectx — error propagation"
    assert browser.eval("document.querySelectorAll('img, iframe, object, embed').length") == 0
    assert browser.eval("document.querySelectorAll('script').length") == 2  # data + page
    assert browser.eval("document.querySelectorAll('style').length") == 1
    assert browser.eval("document.querySelectorAll('[onerror], [onload]').length") == 0


def _open(browser: Browser, html: str, tmp_path: Path) -> None:
    page = tmp_path / "page.html"
    page.write_text(html, encoding="utf-8")
    browser.open(page)


def test_hostile_text_executes_nothing_and_is_shown_as_text(browser, evil, tmp_path):
    html = render_html(evil, jaeger_url="http://jaeger:16686")
    data = html.split('id="data">')[1].split("</script>")[0]
    assert "<" not in data and ">" not in data
    _open(browser, html, tmp_path)
    _assert_inert(browser)
    text = browser.eval("document.body.textContent")
    assert XSS[0] in text and "\\u202egnp.exe" in text and "\\x1b]0;t\\x07" in text
    assert "\u202e" not in text and "\x1b" not in text
    [a] = evil
    for span in a.spans.values():  # every span's details: attributes, events, metadata, stack
        browser.click(f'#rows .row[data-span-id="{span.span_id}"] .span')
        _assert_inert(browser)
        details = browser.eval("document.getElementById('details').textContent")
        assert span.name.replace("\u202e", "\\u202e")[:20] in details
    [origin] = [e.origin for e in a.errors if e.metadata]
    browser.click(f'#rows .row[data-span-id="{origin}"] .span')
    details = browser.eval("document.getElementById('details').textContent")
    assert browser.errors() == []
    assert "meta.note" in details and XSS[1] in details
    assert browser.eval("!!document.querySelector('#details pre.stack')")
    browser.click("#flowsvg .node rect")
    _assert_inert(browser)


def test_odd_ids_and_keys_break_nothing(browser, tmp_path):
    """Hand-built spans (any reader could produce them): ids like __proto__ and markup."""
    trace = "t<img src=x onerror=window.pwned=5>"
    spans = [
        Span(trace, "__proto__", None, "root", "svc", 0, 10_000_000, error=True),
        Span(
            trace,
            '"><img src=x onerror=window.pwned=6>',
            "__proto__",
            "child",
            "constructor",
            1_000_000,
            5_000_000,
            error=True,
            attributes={"__proto__": "x", "tracectx.error.id": "toString"},
            events=[SpanEvent("exception", {"exception.stacktrace": XSS[1] + "\n  line 2"})],
        ),
    ]
    html = render_html(analyse(spans), jaeger_url="javascript:window.pwned=7//")
    _open(browser, html, tmp_path)
    _assert_inert(browser)
    browser.click('#rows .row[data-span-id="\\"><img src=x onerror=window.pwned=6>"] .span')
    _assert_inert(browser)
    assert browser.eval("document.querySelector('#details a.jaeger')") is None  # not http(s)
    assert XSS[1] in browser.eval("document.querySelector('#details pre.stack').textContent")
    browser.click('#rows .row[data-span-id="__proto__"] .span')
    _assert_inert(browser)
