"""The HTML page in a real headless Chromium, over the DevTools protocol: a demo-like trace
(Celery coupon hop, Kafka order with its DLQ, retried capture, FATAL escape) renders with no
console error or CSP violation, the known paths are the highlighted rows, the async hop from
``send coupons.redeem`` to ``run coupons.redeem`` is drawn, a click shows the stack, spans off
the paths fold and unfold, filters and search narrow what is shown, and the flow graph lists a
node's traces."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.trace import Link, SpanKind

from tests.viz.html_browser import Browser
from tracectx import ErrorKind, mark_handled, new_error, traced
from tracectx.errors import TracedError
from tracectx.recording import record_error
from tracectx.viz import analyse
from tracectx.viz.analysis import ErrorPath
from tracectx.viz.renderers import render_html
from tracectx.viz.sources.memory import from_readable_spans

pytestmark = pytest.mark.integration

CELERY = {"messaging.system": "celery", "messaging.destination.name": "celery"}
KAFKA = {"messaging.system": "kafka"}


def _task(tracer, name: str, fail: Exception | None, attempt: int, link=None):
    """A Celery run span as the integration writes it: a consumer child of the send span."""
    run = tracer.start_span(
        f"run {name}",
        kind=SpanKind.CONSUMER,
        attributes={**CELERY, "celery.task.name": name, "tracectx.retry.attempt": attempt},
        links=[Link(link)] if link else None,
    )
    with trace.use_span(run, end_on_exit=True):
        if fail is not None:
            record_error(fail, run)
    return run


def produce_shop() -> None:
    """The demo's request, with the span names, kinds and links the integrations write."""
    tracer = trace.get_tracer("shop")
    with pytest.raises(TracedError), traced("POST /checkout"):
        with tracer.start_as_current_span(
            "send payments.capture",
            kind=SpanKind.PRODUCER,
            attributes={**CELERY, "celery.task.name": "payments.capture"},
        ):
            first = _task(tracer, "payments.capture", new_error(ErrorKind.TRANSIENT, "503"), 1)
            _task(tracer, "payments.capture", None, 2, link=first.get_span_context())
        with traced("pricing.apply_coupon"):
            coupon = new_error(ErrorKind.BUSINESS, "coupon SPRING expired", code="E_COUPON")
            with tracer.start_as_current_span(
                "send coupons.redeem",
                kind=SpanKind.PRODUCER,
                attributes={**CELERY, "celery.task.name": "coupons.redeem"},
            ):
                _task(tracer, "coupons.redeem", coupon, 1)
            try:
                raise coupon  # the result comes back with the worker's error id
            except TracedError as exc:
                mark_handled(exc)
        with tracer.start_as_current_span("send orders", kind=SpanKind.PRODUCER, attributes=KAFKA):
            with tracer.start_as_current_span("process orders", kind=SpanKind.CONSUMER):
                try:
                    with traced("shipping.plan"):
                        raise new_error(ErrorKind.BUSINESS, "address not deliverable")
                except TracedError as exc:
                    mark_handled(exc)
                    dead = exc
                with tracer.start_as_current_span("send orders.dlq", kind=SpanKind.PRODUCER):
                    with tracer.start_as_current_span("process orders.dlq", kind=SpanKind.CONSUMER):
                        mark_handled(dead)
                        with traced("support.ticket"):
                            pass
        for i in range(12):
            with traced(f"cache.get {i}"):
                pass
        with traced("receipt.render"):
            raise new_error(ErrorKind.FATAL, "receipt template store unreadable", code="E_TPL")


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    b = Browser(tmp_path_factory.mktemp("chromium") / "profile")
    yield b
    b.close()


@pytest.fixture
def shop(spans):
    produce_shop()
    return analyse(from_readable_spans(spans.get_finished_spans()))


def _open(browser: Browser, html: str, tmp_path: Path, fragment: str = "") -> None:
    page = tmp_path / "page.html"
    page.write_text(html, encoding="utf-8")
    browser.open(page, fragment)
    assert browser.errors() == []


def _ids(analysis) -> dict[str, str]:
    """span name → span id (first span of that name)."""
    out: dict[str, str] = {}
    for s in sorted(analysis.spans.values(), key=lambda s: s.start_ns):
        out.setdefault(s.name, s.span_id)
    return out


def _rows(browser: Browser) -> list[dict]:
    return browser.eval(
        "[...document.querySelectorAll('#rows .row')].sort((a, b) => a.offsetTop - b.offsetTop)"
        ".map(r => ({id: r.dataset.spanId || null, role: r.dataset.role || null,"
        " async: r.dataset.asyncFrom || null, gap: r.classList.contains('gap'),"
        " text: r.textContent}))"
    )


def test_known_paths_are_the_highlighted_rows(browser, shop, tmp_path):
    [a] = shop
    ids = _ids(a)
    _open(browser, render_html(shop), tmp_path)
    roles = {r["id"]: r["role"] for r in _rows(browser) if r["id"]}
    assert roles[ids["receipt.render"]] == "origin"
    assert roles[ids["POST /checkout"]] == "escaped"  # propagated it out of the request
    assert roles[ids["run coupons.redeem"]] == "origin"
    assert roles[ids["pricing.apply_coupon"]] == "absorbed"
    assert roles[ids["shipping.plan"]] == "origin"
    assert roles[ids["process orders"]] == "absorbed"
    assert roles[ids["process orders.dlq"]] == "absorbed"  # the DLQ consumer is shown
    assert roles[ids["send coupons.redeem"]] is None  # on the way, but no part of the error
    highlighted = {sid for sid, role in roles.items() if role}
    on_paths = {sid for e in a.errors for sid in e.span_ids}
    assert on_paths <= highlighted
    # the coupon error is one path across the hop: origin → absorber, dashed
    seg = browser.eval(
        f"(() => {{ const s = document.querySelector('#overlay .seg[data-from=\"{ids['run coupons.redeem']}\"]');"
        " return s && [s.dataset.to, s.classList.contains('async')]; })()"
    )
    assert seg == [ids["pricing.apply_coupon"], True]
    cards = browser.eval(
        "[...document.querySelectorAll('#pathlist .path')].map(c => c.textContent)"
    )
    dlq = next(c for c in cards if "address not deliverable" in c)
    assert "process orders" in dlq and "process orders.dlq" in dlq and "absorbed" in dlq
    fatal = next(c for c in cards if "E_TPL" in c)
    assert "escaped" in fatal and "exact" in fatal


def test_async_hop_is_drawn_under_its_producer(browser, shop, tmp_path):
    [a] = shop
    ids = _ids(a)
    _open(browser, render_html(shop), tmp_path)
    rows = _rows(browser)
    order = [r["id"] for r in rows]
    send, run = ids["send coupons.redeem"], ids["run coupons.redeem"]
    assert order.index(run) == order.index(send) + 1  # under send, not a loose root at the end
    assert rows[order.index(run)]["async"] == send
    edge = browser.eval(
        f'!!document.querySelector(\'#overlay path.async-edge[data-source="{send}"][data-target="{run}"]\')'
    )
    assert edge
    # Kafka's consumer hangs under its send too, and the retried task's attempts are grouped
    assert rows[order.index(ids["process orders"])]["async"] == ids["send orders"]
    texts = " ".join(r["text"] for r in rows)
    assert "×2 attempts, recovered" in texts and "attempt 2/2" in texts


def test_clicking_a_span_shows_its_stack_and_error(browser, shop, tmp_path):
    [a] = shop
    ids = _ids(a)
    _open(browser, render_html(shop, jaeger_url="http://jaeger:16686/"), tmp_path)
    browser.click(f'#rows .row[data-span-id="{ids["receipt.render"]}"] .span')
    details = browser.eval("document.getElementById('details').textContent")
    stack = browser.eval("document.querySelector('#details pre.stack').textContent")
    assert "Traceback (most recent call last)" in stack and "produce_shop" in stack
    assert "receipt template store unreadable" in details and "E_TPL" in details
    assert "FATAL" in details and "escaped" in details
    link = browser.eval("document.querySelector('#details a.jaeger').href")
    assert link == f"http://jaeger:16686/trace/{a.trace_id}?uiFind={ids['receipt.render']}"
    assert browser.errors() == []


def test_events_reach_the_details(browser, shop, tmp_path):
    [a] = shop
    ids = _ids(a)
    _open(browser, render_html(shop), tmp_path)
    browser.click(f'#rows .row[data-span-id="{ids["process orders.dlq"]}"] .span')
    details = browser.eval("document.getElementById('details').textContent")
    assert "tracectx.error.handled" in details and "address not deliverable" in details


def test_spans_off_the_paths_fold_and_unfold(browser, shop, tmp_path):
    _open(browser, render_html(shop), tmp_path)
    rows = _rows(browser)
    texts = [r["text"] for r in rows]
    assert not any("cache.get" in t for t in texts)
    gap = next(r for r in rows if r["gap"])
    assert "spans off the error paths" in gap["text"]
    browser.click("#rows .row.gap")
    texts = [r["text"] for r in _rows(browser)]
    assert sum("cache.get" in t for t in texts) == 12
    _open(browser, render_html(shop, full=True), tmp_path)  # --full: everything open
    assert sum("cache.get" in r["text"] for r in _rows(browser)) == 12


def test_filters_and_search(browser, shop, tmp_path):
    [a] = shop
    coupon = next(e for e in a.errors if e.code == "E_COUPON")
    _open(browser, render_html(shop), tmp_path)
    count = "document.querySelectorAll('#pathlist .path').length"
    assert browser.eval(count) == len(a.errors)
    browser.click("#search")
    browser.call("Input.insertText", text=coupon.error_id)
    assert browser.eval(count) == 1
    assert "coupon SPRING expired" in browser.eval(
        "document.getElementById('pathlist').textContent"
    )
    browser.eval(
        "(() => { const s = document.getElementById('search'); s.value = '';"
        " s.dispatchEvent(new Event('input')); })()"
    )
    assert browser.eval(count) == len(a.errors)
    browser.click("#kinds label:has(input[value=BUSINESS])")  # kind off
    kinds = browser.eval(
        "[...document.querySelectorAll('#pathlist .path .kind')].map(k => k.textContent)"
    )
    assert "BUSINESS" not in kinds and kinds
    browser.click("#outcomes label:has(input[value=absorbed])")
    outcomes = browser.eval(
        "[...document.querySelectorAll('#pathlist .path')].map(c => c.dataset.outcome)"
    )
    assert outcomes and set(outcomes) == {"escaped"}
    assert browser.errors() == []


def test_flow_graph_lists_a_nodes_traces(browser, shop, tmp_path):
    [a] = shop
    _open(browser, render_html(shop), tmp_path)
    nodes = browser.eval(
        "[...document.querySelectorAll('#flowsvg .node')].map(n => n.dataset.node)"
    )
    assert "shop-test: receipt.render" in nodes or any(
        n.endswith(": receipt.render") for n in nodes
    )
    assert "⇡ escaped" in nodes
    edges = browser.eval(
        "[...document.querySelectorAll('#flowsvg path.edge')].map(e => [e.dataset.from, e.dataset.to, e.dataset.count])"
    )
    assert any(
        f.endswith(": receipt.render") and t.endswith(": POST /checkout") for f, t, _ in edges
    )
    top = browser.eval("document.querySelector('#origins ol li').textContent")
    assert "×1" in top
    node = next(n for n in nodes if n.endswith(": receipt.render"))
    browser.click(f'#flowsvg .node[data-node="{node}"] rect')
    assert a.trace_id in browser.eval("document.getElementById('nodetraces').textContent")


@dataclasses.dataclass
class _JudgedPath(ErrorPath):
    """The fields the analysis is adding: outcome, confidence and evidence."""

    outcome: str = "absorbed"
    confidence: float = 1.0
    evidence: list[str] = dataclasses.field(default_factory=list)


def test_unobserved_outcome_confidence_and_evidence(browser, spans, tmp_path):
    with traced("request"):
        try:
            with traced("audit (fire-and-forget)"):
                raise KeyError("audit template missing")
        except KeyError:
            pass
    [a] = analyse(from_readable_spans(spans.get_finished_spans()))
    fields = {f.name: getattr(a.errors[0], f.name) for f in dataclasses.fields(ErrorPath)}
    a.errors = [
        _JudgedPath(
            **{
                **fields,
                "absorber": None,
                "outcome": "unobserved",
                "confidence": 0.62,
                "evidence": ["no span awaited the task", "inferred from status"],
            }
        )
    ]
    _open(browser, render_html([a]), tmp_path)
    card = browser.eval("document.querySelector('#pathlist .path').textContent")
    assert "unobserved" in card and "confidence 62%" in card and "no span awaited the task" in card
    assert browser.eval("document.querySelector('#pathlist .path').dataset.outcome") == "unobserved"
    assert browser.eval("!!document.querySelector('#rows .row[data-outcome=unobserved]')")
    assert browser.eval("!!document.querySelector('#overlay .mark-unobserved')")


def test_url_fragment_selects_a_span(browser, shop, tmp_path):
    [a] = shop
    ids = _ids(a)
    _open(browser, render_html(shop), tmp_path, f"#span={ids['cache.get 3']}")
    assert browser.eval("document.querySelector('#details h2').textContent") == "cache.get 3"
    assert browser.eval(
        f"!!document.querySelector('#rows .row.cur[data-span-id=\"{ids['cache.get 3']}\"]')"
    )


def test_json_in_the_page_is_the_only_data(shop):
    html = render_html(shop)
    data = json.loads(html.split('id="data">')[1].split("</script>")[0])
    assert data["traces"][0]["trace_id"] == shop[0].trace_id
