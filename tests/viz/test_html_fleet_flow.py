"""The fleet flow page (`render_flow_html`) in a real headless Chromium: a flow snapshot counted
by the stream's real `FlowWindow` renders with no console error or CSP violation, shows every
node, edge and count of the snapshot, its filters and search narrow the graph, a clicked node
lists what flows in and out; the graph JSON's ``flow`` draws the same graph as the trace page;
hostile and malformed snapshots run nothing and show names as text."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.viz.html_browser import Browser
from tests.viz.test_html_page import produce_shop
from tracectx.viz import analyse
from tracectx.viz.renderers import render_flow_html, render_html, to_json_data
from tracectx.viz.renderers.flow_html import read_flow_snapshot
from tracectx.viz.sources.memory import from_readable_spans

paths = pytest.importorskip("tracectx_stream.paths")  # the stream's FlowWindow counts the flows

pytestmark = pytest.mark.integration

# (kind, outcome, chain of "service: operation" hops, absorbed by the last?, how many)
FLEET: list[tuple[str, str, list[str], bool, int]] = [
    ("TRANSIENT", "absorbed", ["stripe-proxy: POST /v1/charges", "payments: capture",
                               "checkout-api: POST /checkout"], True, 40),
    ("BUSINESS", "absorbed", ["pricing: apply_coupon", "checkout-api: POST /checkout"], True, 25),
    ("BUSINESS", "absorbed", ["auth: verify token", "api-gateway: GET /account"], True, 15),
    ("BUSINESS", "absorbed", ["shipping: plan", "orders-worker: process orders",
                              "support-worker: process orders.dlq"], True, 12),
    ("TRANSIENT", "unobserved", ["inventory: reserve", "orders-worker: process orders"], False, 8),
    ("TRANSIENT", "escaped", ["inventory: SELECT stock", "inventory: reserve",
                              "checkout-api: POST /checkout"], False, 6),
    ("FATAL", "escaped", ["receipts: render", "checkout-api: POST /checkout"], False, 5),
]  # fmt: skip


def _hop(node: str, n: int) -> dict[str, Any]:
    service, _, name = node.partition(": ")
    return {"span_id": f"{n:016x}", "service": service, "name": name}


def record(kind: str, outcome: str, chain: list[str], absorbed: bool) -> dict[str, Any]:
    """A path record as `path_records` writes it (only the fields `FlowWindow.add` reads)."""
    hops = [_hop(node, i) for i, node in enumerate(chain)]
    last = hops.pop() if absorbed else None
    return {
        "kind": kind,
        "outcome": outcome,
        "origin": hops[0],
        "propagators": hops[1:],
        "absorber": last,
    }


def fleet_snapshot() -> dict[str, Any]:
    """Seven services' error flows counted by the stream's own `FlowWindow`."""
    window = paths.FlowWindow()
    for kind, outcome, chain, absorbed, n in FLEET:
        for _ in range(n):
            window.add(record(kind, outcome, chain, absorbed), now=1_000_000.0)
    snapshot: dict[str, Any] = window.snapshot(now=1_000_030.0)
    return snapshot


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    b = Browser(tmp_path_factory.mktemp("chromium") / "profile")
    yield b
    b.close()


def _open(browser: Browser, html: str, tmp_path: Path) -> None:
    page = tmp_path / "fleet.html"
    page.write_text(html, encoding="utf-8")
    browser.open(page)
    assert browser.errors() == []


def _graph(browser: Browser) -> tuple[set[str], set[tuple[str, str, int]], list[str]]:
    """Drawn nodes, edges (from, to, count) and edge labels."""
    nodes = browser.eval(
        "[...document.querySelectorAll('#flowsvg .node')].map(n => n.dataset.node)"
    )
    edges = browser.eval(
        "[...document.querySelectorAll('#flowsvg path.edge')]"
        ".map(e => [e.dataset.from, e.dataset.to, Number(e.dataset.count)])"
    )
    labels = browser.eval(
        "[...document.querySelectorAll('#flowsvg text.cnt')].map(t => t.textContent)"
        ".filter(t => t.startsWith('×'))"
    )
    return set(nodes), {tuple(e) for e in edges}, labels


def _chip(browser: Browser, box: str, value: str) -> None:
    browser.click(f'#{box} label:has(input[value="{value}"])')


def expected_edges(snapshot: dict[str, Any]) -> set[tuple[str, str, int]]:
    edges = {(e["from"], e["to"], e["count"]) for e in snapshot["edges"]}
    for node, outcomes in snapshot["outcomes"].items():
        for outcome, sink in (("escaped", "⇡ escaped"), ("unobserved", "⊘ unobserved")):
            if outcomes.get(outcome):
                edges.add((node, sink, outcomes[outcome]))
    return edges


def test_fleet_page_shows_every_node_edge_and_count(browser, tmp_path):
    snapshot = fleet_snapshot()
    _open(browser, render_flow_html(snapshot), tmp_path)
    assert browser.eval("document.title") == "tracectx — fleet error flow"
    nodes, edges, labels = _graph(browser)
    chains = {node for _, _, chain, _, _ in FLEET for node in chain}
    assert nodes == chains | {"⇡ escaped", "⊘ unobserved"}
    assert edges == expected_edges(snapshot)
    assert ("payments: capture", "checkout-api: POST /checkout", 40) in edges
    assert ("checkout-api: POST /checkout", "⇡ escaped", 11) in edges  # FATAL 5 + TRANSIENT 6
    assert sorted(labels) == sorted(f"×{n}" for _, _, n in edges)
    card = browser.eval(
        "document.querySelector('#flowsvg .node[data-node=\"checkout-api: POST /checkout\"]')"
        ".textContent"
    )
    assert "✔ 65 absorbed" in card  # 40 captures + 25 coupons
    top = browser.eval("[...document.querySelectorAll('#origins li')].map(li => li.textContent)")
    assert top[:2] == ["stripe-proxy: POST /v1/charges  ×40", "pricing: apply_coupon  ×25"]
    summary = browser.eval("document.getElementById('summary').textContent")
    assert "window last 1 h" in summary and "error paths 111" in summary
    assert "edges 10" in summary and "nodes 12" in summary


def test_filters_and_search_narrow_the_graph(browser, tmp_path):
    snapshot = fleet_snapshot()
    _open(browser, render_flow_html(snapshot), tmp_path)
    kinds = browser.eval("[...document.querySelectorAll('#kinds input')].map(i => i.value)")
    assert kinds == ["BUSINESS", "FATAL", "TRANSIENT"]

    _chip(browser, "kinds", "TRANSIENT")  # off: the charge and stock flows go
    nodes, edges, _ = _graph(browser)
    assert "stripe-proxy: POST /v1/charges" not in nodes and "inventory: reserve" not in nodes
    assert ("pricing: apply_coupon", "checkout-api: POST /checkout", 25) in edges
    _chip(browser, "kinds", "TRANSIENT")

    _chip(browser, "outcomes", "escaped")  # off: no escape sink
    nodes, edges, _ = _graph(browser)
    assert "⇡ escaped" not in nodes and "⊘ unobserved" in nodes
    card = browser.eval(
        "document.querySelector('#flowsvg .node[data-node=\"checkout-api: POST /checkout\"]')"
        ".textContent"
    )
    assert "65 absorbed" in card
    _chip(browser, "outcomes", "escaped")

    services = browser.eval("[...document.querySelectorAll('#service option')].map(o => o.value)")
    assert "shipping" in services and "checkout-api" in services
    browser.eval(
        "(() => { const s = document.getElementById('service'); s.value = 'shipping';"
        " s.dispatchEvent(new Event('change')); })()"
    )
    nodes, edges, _ = _graph(browser)
    assert edges == {("shipping: plan", "orders-worker: process orders", 12)}
    browser.eval(
        "(() => { const s = document.getElementById('service'); s.value = '';"
        " s.dispatchEvent(new Event('change')); })()"
    )

    browser.eval(
        "(() => { const s = document.getElementById('search'); s.value = 'coupon';"
        " s.dispatchEvent(new Event('input')); })()"
    )
    nodes, edges, _ = _graph(browser)
    assert edges == {("pricing: apply_coupon", "checkout-api: POST /checkout", 25)}
    assert browser.errors() == []


def test_a_clicked_node_lists_what_flows_in_and_out(browser, tmp_path):
    _open(browser, render_flow_html(fleet_snapshot()), tmp_path)
    browser.click('#flowsvg .node[data-node="orders-worker: process orders"] rect')
    lines = browser.eval(
        "[...document.querySelectorAll('#nodetraces li')].map(li => li.textContent)"
    )
    assert "← from shipping: plan  ×12  (BUSINESS 12)" in lines
    assert "← from inventory: reserve  ×8  (TRANSIENT 8)" in lines
    assert "→ to ⊘ unobserved  ×8  (kind unknown 8)" in lines
    assert "→ to support-worker: process orders.dlq  ×12  (BUSINESS 12)" in lines
    browser.click("#nodetraces li:not(.plain)")  # follows the line to the other node
    selected = browser.eval("document.querySelector('#flowsvg .node.sel').dataset.node")
    assert selected == "shipping: plan"
    assert browser.errors() == []


def test_the_graph_json_flow_draws_the_trace_pages_graph(browser, spans, tmp_path):
    """`tracectx graph --format json`'s ``flow`` on the fleet page: the same nodes and edges as
    the flow graph of the trace page for the same traces."""
    produce_shop()
    shop = analyse(from_readable_spans(spans.get_finished_spans()))
    _open(browser, render_html(shop), tmp_path)
    trace_graph = _graph(browser)
    flow = json.loads(json.dumps(to_json_data(shop)["flow"]))
    _open(browser, render_flow_html(flow), tmp_path)
    fleet_graph = _graph(browser)
    assert fleet_graph[0] == trace_graph[0] and fleet_graph[1] == trace_graph[1]
    assert any(t == "⇡ escaped" for _, t, _ in fleet_graph[1])


XSS = [
    "<img src=x onerror=\"window.pwned=1;document.title='pwned'\">",
    "</script><script>window.pwned=2</script>",
    '"><svg onload=window.pwned=3>',
    "</style><style>*{display:none}</style>",
]
EVIL = " ".join(XSS) + " \u202egnp.exe \x1b]0;t\x07"


def _assert_inert(browser: Browser) -> None:
    assert browser.errors() == []  # no CSP violation either: nothing tried to run
    assert browser.eval("window.pwned === undefined")
    assert browser.eval("document.title") == "tracectx — fleet error flow"
    assert browser.eval("document.querySelectorAll('img, iframe, object, embed').length") == 0
    assert browser.eval("document.querySelectorAll('script').length") == 2  # data + page
    assert browser.eval("document.querySelectorAll('style').length") == 1
    assert browser.eval("document.querySelectorAll('[onerror], [onload]').length") == 0


def test_hostile_names_run_nothing_and_are_shown_as_text(browser, tmp_path):
    window = paths.FlowWindow()
    chain = ["svc" + EVIL + ": op" + EVIL, "__proto__: constructor", "api: " + XSS[1]]
    for _ in range(3):
        window.add(record("KIND" + EVIL, "escaped", chain, False))
    html = render_flow_html(window.snapshot())
    data = html.split('id="data">')[1].split("</script>")[0]
    assert "<" not in data and ">" not in data
    _open(browser, html, tmp_path)
    _assert_inert(browser)
    nodes, edges, _ = _graph(browser)
    assert {"__proto__: constructor", "api: " + XSS[1]} <= nodes
    assert ("__proto__: constructor", "api: " + XSS[1], 3) in edges and len(edges) == 3
    text = browser.eval("document.body.textContent")
    assert XSS[0] in text and "\\u202egnp.exe" in text and "\\x1b]0;t\\x07" in text
    assert "\u202e" not in text and "\x1b" not in text
    for k in range(len(nodes)):  # every node's in/out list
        browser.eval(
            f"document.querySelectorAll('#flowsvg .node')[{k}].dispatchEvent(new MouseEvent('click'))"
        )
        _assert_inert(browser)
    assert XSS[1] in browser.eval("document.getElementById('nodetraces').textContent")
    browser.click("#kinds label")  # the hostile kind's chip, off and on
    browser.click("#kinds label")
    _assert_inert(browser)


def test_malformed_snapshots_break_nothing(browser, tmp_path):
    """A snapshot file is input: wrong types, odd keys and counts are dropped, not obeyed."""
    odd: dict[str, Any] = {
        "window_s": "soon",
        "edges": [
            {"from": "a: x", "to": "b: y", "count": 3, "kinds": {"__proto__": 2, "toString": 1}},
            {"from": "a: x", "to": "c: z", "count": float("nan"), "kinds": {}},
            {"from": 7, "to": "b: y", "count": 1},
            {"from": "b: y", "to": "c: z", "count": 4, "kinds": {"BUSINESS": -5}},
            "not an edge",
        ],
        "origins": [{"node": "a: x", "count": 3}, {"node": None, "count": 2}, []],
        "outcomes": {"c: z": {"escaped": 4, "__proto__": 9, "absorbed": "x"}, "b: y": []},
    }
    _open(browser, render_flow_html(odd), tmp_path)
    nodes, edges, _ = _graph(browser)
    assert edges == {("a: x", "b: y", 3), ("b: y", "c: z", 4), ("c: z", "⇡ escaped", 4)}
    assert nodes == {"a: x", "b: y", "c: z", "⇡ escaped"}
    kinds = browser.eval("[...document.querySelectorAll('#kinds input')].map(i => i.value)")
    assert kinds == ["__proto__", "toString"]
    _open(browser, render_flow_html({}), tmp_path)
    assert "No error paths in the window yet." in browser.eval(
        "document.getElementById('flowsvg').textContent"
    )


def test_a_snapshot_file_is_told_from_span_files(tmp_path):
    """`read_flow_snapshot` takes what ``--flow-snapshot`` and ``/flow`` write, and nothing
    else: OTLP JSON, Jaeger JSON and the graph JSON are not snapshots."""
    snapshot = fleet_snapshot()
    files = {
        "indented.json": json.dumps(snapshot, indent=1),  # as --flow-snapshot writes it
        "compact.json": json.dumps(snapshot),  # as GET /flow returns it
        "otlp.json": json.dumps({"resourceSpans": [], "window_s": 1}),
        "jaeger.json": json.dumps({"data": []}),
        "graph.json": json.dumps({"schema": "x", "traces": [], "flow": snapshot}),
        "list.json": "[]",
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    assert read_flow_snapshot(tmp_path / "indented.json") == snapshot
    assert read_flow_snapshot(str(tmp_path / "compact.json")) == snapshot
    for name in ("otlp.json", "jaeger.json", "graph.json", "list.json"):
        assert read_flow_snapshot(tmp_path / name) is None
    (tmp_path / "cut.json").write_text(json.dumps(snapshot)[:100])
    with pytest.raises(ValueError):
        read_flow_snapshot(tmp_path / "cut.json")


def test_tracectx_graph_opens_a_flow_snapshot(browser, tmp_path):
    """``tracectx graph flow.json --format html -o page.html`` draws a stream's snapshot."""
    from tracectx.cli import main

    snap = tmp_path / "flow.json"
    snap.write_text(json.dumps(fleet_snapshot(), indent=1))
    out = tmp_path / "page.html"
    assert main(["graph", str(snap), "--format", "html", "-o", str(out)]) == 0
    html = out.read_text(encoding="utf-8")
    assert html == render_flow_html(fleet_snapshot())
    _open(browser, html, tmp_path)


def test_hostile_snapshot_files_are_refused_or_drawn_without_a_crash(tmp_path):
    """Non-finite counts are dropped; a snapshot nested too deep is a ValueError (the CLI then
    reads the file as spans and reports it), never an OverflowError or RecursionError."""
    inf = tmp_path / "inf.json"
    inf.write_text('{"window_s":60,"edges":[{"from":"a","to":"b","count":1e999,"kinds":{}}]}')
    assert "<html" in render_flow_html(read_flow_snapshot(inf) or {})
    deep = tmp_path / "deep.json"
    deep.write_text('{"window_s": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(ValueError):
        read_flow_snapshot(deep)
