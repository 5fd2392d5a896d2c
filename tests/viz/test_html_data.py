"""What the page is given: rows in timeline order with async consumers under their producer,
subtrees as index ranges, paths as row numbers; the JSON model's additive events and outcome;
and the page is one self-contained file whose CSP pins its own script and style."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from importlib import resources

from tracectx.viz import analyse
from tracectx.viz.model import Link, Span, SpanEvent
from tracectx.viz.renderers import render_html, to_json_data
from tracectx.viz.renderers.html_data import idle_gaps, impact_order, page_data
from tracectx.viz.renderers.json import EVENT_TEXT_LIMIT

T = "a" * 32


def _span(sid, parent, name, start, end, kind="internal", **kw):
    return Span(T, sid, parent, name, "shop", start * 1000, end * 1000, kind=kind, **kw)  # µs


def _celery_trace():
    return [
        _span("r", None, "POST /checkout", 0, 100),
        _span("a", "r", "pricing.apply_coupon", 10, 90),
        _span("s", "a", "send coupons.redeem", 11, 12, kind="producer"),
        _span(
            "c",
            "s",
            "run coupons.redeem",
            20,
            40,
            kind="consumer",
            error=True,
            attributes={
                "tracectx.error.id": "e1",
                "tracectx.error.role": "origin",
                "tracectx.error.kind": "BUSINESS",
            },
        ),
        _span("z", "r", "late", 95, 99),
    ]


def test_consumer_hangs_under_its_producer_and_subtrees_are_ranges():
    [tr] = page_data(analyse(_celery_trace()))["traces"]
    assert tr["id"] == ["r", "a", "s", "c", "z"]  # run right under send, not a root at the end
    assert tr["depth"] == [0, 1, 2, 3, 1]
    assert tr["parent"] == [-1, 0, 1, 2, 0]
    assert tr["end"] == [5, 4, 4, 4, 5]
    assert tr["async"] == {"3": 2}
    assert tr["kind"] == "IIPKI"
    assert tr["start"][3] == 20 and tr["dur"][3] == 20  # µs from the first start


def test_a_link_only_consumer_is_moved_but_never_under_itself():
    spans = [
        _span("p", None, "publish", 0, 10, kind="producer"),
        _span("k", None, "consume", 20, 30, kind="consumer", links=[Link(T, "p")]),
        _span("x", None, "x", 0, 5, links=[Link(T, "y")]),  # x ⇠ y and y is x's child
        _span("y", "x", "y", 1, 2),
    ]
    [tr] = page_data(analyse(spans))["traces"]
    assert tr["parent"][tr["id"].index("k")] == tr["id"].index("p")
    assert tr["parent"][tr["id"].index("x")] == -1
    assert sorted(tr["id"]) == ["k", "p", "x", "y"]


def test_paths_are_row_numbers_with_outcome_and_handlers():
    spans = _celery_trace()
    spans[1].events.append(SpanEvent("tracectx.error.handled", {"tracectx.error.id": "e1"}))
    spans.append(
        _span(
            "d",
            "r",
            "process dlq",
            96,
            98,
            kind="consumer",
            events=[SpanEvent("tracectx.error.handled", {"tracectx.error.id": "e1"})],
        )
    )
    [tr] = page_data(analyse(spans))["traces"]
    [path] = tr["paths"]
    assert tr["id"][path["origin"]] == "c" and tr["id"][path["absorber"]] == "a"
    assert [tr["id"][r] for r in path["handled_by"]] == ["d"]
    assert path["outcome"] == "absorbed" and path["exact"]
    assert tr["role"][str(tr["id"].index("d"))] == "absorbed"
    assert tr["on"][tr["id"].index("d")] == "1"  # shown without unfolding


def test_json_model_keeps_v1_and_adds_events_and_outcome():
    stack = "Traceback (most recent call last):\n" + "  frame\n" * 5000 + "ValueError: inner"
    spans = _celery_trace()
    spans[3].events.append(SpanEvent("exception", {"exception.stacktrace": stack, "n": [1, 2]}))
    data = json.loads(json.dumps(to_json_data(analyse(spans))))
    assert data["schema"] == "tracectx.graph/v1"
    span = next(s for s in data["traces"][0]["spans"] if s["span_id"] == "c")
    assert set(span) >= {
        "span_id",
        "parent_id",
        "name",
        "service",
        "kind",
        "start_ns",
        "duration_ms",
        "error",
        "children",
        "attributes",
        "events",
        "links",
    }
    [event] = span["events"]
    assert event["name"] == "exception" and event["attributes"]["n"] == "[1, 2]"
    kept = event["attributes"]["exception.stacktrace"]
    assert kept.endswith("ValueError: inner") and len(kept) == EVENT_TEXT_LIMIT + 1  # tail kept
    [err] = data["traces"][0]["errors"]
    assert err["outcome"] in ("absorbed", "escaped", "unobserved")
    assert set(err) >= {
        "error_id",
        "kind",
        "origin",
        "propagators",
        "absorber",
        "escaped",
        "confidence",
        "evidence",
    }


def test_page_is_self_contained_and_its_csp_pins_script_and_style():
    html = render_html(analyse(_celery_trace()))
    csp = re.search(r'content="(default-src[^"]*)"', html).group(1)
    assert "default-src 'none'" in csp and "unsafe" not in csp and "http" not in csp
    for tag, directive in (("script", "script-src"), ("style", "style-src")):
        body = html.split(f"<{tag}>")[1].split(f"</{tag}>")[0]
        digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
        assert f"{directive} 'sha256-{digest}'" in csp
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    js = resources.files("tracectx.viz.renderers").joinpath("html_page.js").read_text()
    for sink in (
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
        "new Function",
        "</script",
        "<!--",
    ):
        assert sink not in js


def test_paths_come_in_order_of_impact(pipeline_spans):
    """Escaped first, then by severity, unobserved next, a recovered retry last: here nothing
    escapes, so the FATAL is the first card and the timeout a retry recovered the last."""
    [a] = analyse(pipeline_spans)
    [tr] = page_data([a])["traces"]
    order = [(p["outcome"], p["kind"], p["recovered"]) for p in tr["paths"]]
    assert order[0] == ("absorbed", "FATAL", False)
    assert order[-1][2] is True and order[-1][1] == "TRANSIENT"
    groups = [
        3 if rec else {"escaped": 0, "absorbed": 1, "unobserved": 2}[out] for out, _, rec in order
    ]
    assert groups == sorted(groups)
    assert a.errors[impact_order(a)[0]].kind == "FATAL"


def test_severity_orders_within_an_outcome():
    spans = [_span("r", None, "root", 0, 100)]
    for k, kind in enumerate(["TRANSIENT", "BUSINESS", "FATAL", "UNKNOWN"]):
        spans.append(
            _span(
                f"s{k}",
                "r",
                f"step {kind}",
                k * 10,
                k * 10 + 5,
                error=True,
                attributes={
                    "tracectx.error.id": f"e{k}",
                    "tracectx.error.kind": kind,
                    "tracectx.error.role": "origin",
                },
                events=[SpanEvent("tracectx.error.handled", {"tracectx.error.id": f"e{k}"})],
            )
        )
    [tr] = page_data(analyse(spans))["traces"]
    kinds = [p["kind"] for p in tr["paths"] if p["outcome"] == tr["paths"][0]["outcome"]]
    assert kinds == sorted(kinds, key=["FATAL", "UNKNOWN", "BUSINESS", "TRANSIENT"].index)


def test_a_long_hop_is_an_idle_gap():
    """A DLQ consumer 3.2 s after a 100 µs request: the stretch between is idle, drawn as a
    break; short pauses are not."""
    spans = [
        _span("r", None, "POST /checkout", 0, 100),
        _span("p", "r", "send orders.dlq", 60, 61, kind="producer"),
        _span("a", "r", "a", 10, 20),
        _span("b", "r", "b", 22, 30),  # 2 µs pause: not a gap
        _span("k", "p", "process orders.dlq", 3_200_000, 3_200_300, kind="consumer"),
    ]
    [tr] = page_data(analyse(spans))["traces"]
    assert tr["gaps"] == [[100.0, 3_200_000.0]]
    assert idle_gaps([], 0) == []


def test_exceptions_and_retries_are_marked_where_they_happened():
    spans = _celery_trace()
    spans[3].events.extend(
        [
            SpanEvent("exception", {"exception.type": "E"}, time_ns=25_000),
            SpanEvent("tracectx.retry", {"attempt": 1}, time_ns=30_000),
            SpanEvent("exception", {"exception.type": "E"}),  # no time: no mark
        ]
    )
    [tr] = page_data(analyse(spans))["traces"]
    row = tr["id"].index("c")
    assert tr["marks"] == [[row, 25.0, "x"], [row, 30.0, "r"]]
    events = json.loads(tr["detail"])["events"][str(row)]
    assert [e.get("t") for e in events] == [25.0, 30.0, None]
