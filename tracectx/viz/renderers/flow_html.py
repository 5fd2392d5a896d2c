"""The fleet error flow as the visualiser's HTML page: ``tracectx stream``'s rolling flow graph
(origin → propagator → absorber edge counts by service/operation and kind) drawn by the same
script and style as ``tracectx graph --format html``, with its flow-graph view only.

The snapshot is what ``FlowWindow.snapshot()`` returns (``/flow``, ``--flow-snapshot``); the
``flow`` object of ``tracectx graph --format json`` is accepted too. Node names come from span
data and a snapshot may come from a file, so every field is type-checked here, the page gets
only strings and whole numbers, and it stays as inert as the trace page (escaped JSON,
``textContent`` only, a CSP that runs nothing but its own hashed script and style).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import re
from collections.abc import Mapping
from typing import Any

from tracectx.viz.renderers.html import fill_page

__all__ = ["flow_page_data", "read_flow_snapshot", "render_flow_html"]

MAX_ITEMS = 5_000  # edges (and origin, outcome nodes) put in the page, most counted first
MAX_TEXT = 500  # characters of a node name or kind
OUTCOMES = ("absorbed", "escaped", "unobserved")
MAX_SNAPSHOT_BYTES = 64 * 2**20  # a window's snapshot is bounded (capped keys per bucket)
_SNAPSHOT_START = re.compile(rb'\A\s*\{\s*"window_s"\s*:')  # how the stream writes one

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy"
 content="default-src 'none'; style-src __STYLE_HASH__; script-src __SCRIPT_HASH__">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>tracectx — fleet error flow</title>
<style>__CSS__</style></head><body class="fleet">
<header><h1>tracectx — fleet error flow</h1>
<input id="search" type="search" placeholder="search service or operation…" aria-label="search">
<span id="kinds" class="chips"></span>
<select id="service" aria-label="service"><option value="">all services</option></select>
<span id="outcomes" class="chips"></span></header>
<div id="wrap"><main id="main">
<section id="summary"></section>
<section id="flow"><h2>Error flow across the fleet</h2>
<div id="flowwrap"><div id="flowbox"><svg id="flowsvg"></svg></div><div id="origins"></div></div>
<div id="nodetraces"></div></section>
</main></div>
<script type="application/json" id="data">__DATA__</script>
<script>__JS__</script></body></html>
"""


def _text(value: Any) -> str | None:
    return value[:MAX_TEXT] if isinstance(value, str) else None


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return 0
    return max(0, min(int(value), 2**53 - 1))


def _counts(value: Any) -> list[tuple[str, int]]:
    """A ``{name: count}`` object as ``[name, count]`` pairs (the page never uses data as object
    keys), non-strings and non-positive counts dropped."""
    if not isinstance(value, Mapping):
        return []
    pairs = [(name[:MAX_TEXT], _count(n)) for name, n in value.items() if isinstance(name, str)]
    return [(name, n) for name, n in pairs if n > 0]


def _edges(raw: Any) -> list[list[Any]]:
    out = []
    for e in raw if isinstance(raw, list) else []:
        if not isinstance(e, Mapping):
            continue
        a, b, n = _text(e.get("from")), _text(e.get("to")), _count(e.get("count"))
        if a is None or b is None or n == 0:
            continue
        kinds = _counts(e.get("kinds"))
        known = sum(k[1] for k in kinds)
        if known < n:  # counted without a kind (overflow, or an older shape): kind unknown
            kinds.append(("", n - known))
        out.append([a, b, kinds])
    return out


def _origins(raw: Any) -> list[list[Any]]:
    out = []
    for o in raw if isinstance(raw, list) else []:
        if not isinstance(o, Mapping) or (node := _text(o.get("node"))) is None:
            continue
        n, kinds = _count(o.get("count")), _counts(o.get("kinds"))
        known = sum(k[1] for k in kinds)
        if known < n:
            kinds.append(("", n - known))
        if kinds:
            out.append([node, kinds])
    return out


def _outcomes(snapshot: Mapping[str, Any]) -> list[list[Any]]:
    """Outcomes by last node: the stream's ``outcomes`` or the graph JSON's ``absorbed`` and
    ``escaped`` tables."""
    raw = snapshot.get("outcomes")
    by_node: dict[str, Any] = {}
    if isinstance(raw, Mapping):
        by_node = {node: counts for node, counts in raw.items() if isinstance(node, str)}
    else:
        for outcome in OUTCOMES:
            table = snapshot.get(outcome)
            for node, n in table.items() if isinstance(table, Mapping) else ():
                if isinstance(node, str):
                    by_node.setdefault(node, {})[outcome] = n
    out = []
    for node, counts in by_node.items():
        pairs = [p for p in _counts(counts) if p[0] in OUTCOMES]
        if pairs:
            out.append([node[:MAX_TEXT], pairs])
    return out


def _top(items: list[list[Any]]) -> tuple[list[list[Any]], int]:
    items.sort(key=lambda item: -sum(n for _, n in item[-1]))
    return items[:MAX_ITEMS], max(0, len(items) - MAX_ITEMS)


def flow_page_data(
    snapshot: Mapping[str, Any], *, now: dt.datetime | None = None
) -> dict[str, Any]:
    """The fleet page's data, JSON-ready: edges ``[from, to, [[kind, count], …]]``, origins
    ``[node, [[kind, count], …]]`` and outcomes ``[node, [[outcome, count], …]]``, most counted
    first and at most `MAX_ITEMS` of each (how many were left out is in ``dropped``); kind
    ``""`` is a count whose kind is not known."""
    edges, dropped_edges = _top(_edges(snapshot.get("edges")))
    origins, dropped_origins = _top(_origins(snapshot.get("origins")))
    outcomes, dropped_outcomes = _top(_outcomes(snapshot))
    window = snapshot.get("window_s")
    return {
        "mode": "fleet",
        "window_s": _count(window) if isinstance(window, int | float) else None,
        "generated": (now or dt.datetime.now(dt.UTC)).isoformat(timespec="seconds"),
        "edges": edges,
        "origins": origins,
        "outcomes": outcomes,
        "dropped": dropped_edges + dropped_origins + dropped_outcomes,
        "full": False,
        "jaeger_url": None,
        "names": [],
        "services": [],
        "traces": [],
    }


def render_flow_html(snapshot: Mapping[str, Any], *, now: dt.datetime | None = None) -> str:
    """The fleet flow page for a flow snapshot, as one offline HTML file; `now` is the time
    shown as "generated" (default: the current time)."""
    return fill_page(_PAGE, flow_page_data(snapshot, now=now))


def read_flow_snapshot(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The flow snapshot in the file at `path` (``--flow-snapshot`` JSON, or a saved ``/flow``),
    or None when the file does not start like one: span files are told apart by their first
    bytes, without parsing them. A file that starts like one but is not JSON raises
    ValueError."""
    with open(path, "rb") as f:
        if not _SNAPSHOT_START.match(f.read(64)):
            return None
        f.seek(0)
        raw = f.read(MAX_SNAPSHOT_BYTES + 1)
    if len(raw) > MAX_SNAPSHOT_BYTES:
        raise ValueError(f"flow snapshot larger than {MAX_SNAPSHOT_BYTES:,} bytes")
    try:
        data = json.loads(raw)
    except RecursionError:
        raise ValueError("flow snapshot nested too deep") from None
    return data if isinstance(data, dict) else None
