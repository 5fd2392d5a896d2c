"""A self-contained HTML page (one file, no network): collapsible trees, origins highlighted,
details on click.

Span names and attributes are attacker-controlled. The data goes in as JSON inside a
``<script type="application/json">`` block with ``<``, ``>`` and ``&`` escaped, and the page
builds its DOM with ``textContent`` only — nothing from a span is ever parsed as HTML.
"""

from __future__ import annotations

import json
from typing import Any

from tracectx.viz.analysis import TraceAnalysis
from tracectx.viz.renderers.json import to_json_data
from tracectx.viz.renderers.paths import roles, visible_spans

__all__ = ["render_html"]


def _embed(data: Any) -> str:
    text = json.dumps(data, separators=(",", ":"), default=str)
    return (
        text.replace("&", "\\u0026")
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy"
 content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<title>tracectx — error propagation</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:0;display:flex;height:100vh;color:#222}
#main{flex:1;overflow:auto;padding:16px} #side{width:380px;border-left:1px solid #ddd;
padding:16px;overflow:auto;background:#fafafa} h1{font-size:18px;margin:0 0 12px}
details{margin-left:18px} summary{cursor:pointer;padding:2px 4px;border-radius:4px}
.span{display:inline-block;padding:1px 6px;border-radius:4px;border:1px solid transparent}
.origin{background:#fdd;border-color:#c00;font-weight:bold}
.propagated{background:#ffe9b3;border-color:#b80} .absorbed{background:#dfd;border-color:#080}
.escaped{background:#f6d;border-color:#909} .meta{color:#888;font-size:12px;margin-left:6px}
.async{color:#07a;font-weight:bold} .trace{margin-bottom:18px} .problem{color:#a00;font-size:12px}
table{border-collapse:collapse;font-size:12px;width:100%} td{border-top:1px solid #eee;
padding:2px 4px;vertical-align:top;word-break:break-all} .flow li{margin:2px 0}
</style></head><body>
<div id="main"><h1>tracectx — error propagation</h1><div id="traces"></div>
<h1>Error flow across traces</h1><ul class="flow" id="flow"></ul></div>
<div id="side"><h1>Details</h1><div id="details">Click a span.</div></div>
<script type="application/json" id="data">__DATA__</script>
<script>
"use strict";
const data = JSON.parse(document.getElementById("data").textContent);
const el = (tag, cls, text) => { const e = document.createElement(tag);
  if (cls) e.className = cls; if (text !== undefined) e.textContent = String(text); return e; };
function showDetails(span, err) {
  const box = document.getElementById("details"); box.replaceChildren();
  box.appendChild(el("h2", null, span.name));
  const t = el("table"); const row = (k, v) => { const r = el("tr");
    r.appendChild(el("td", null, k)); r.appendChild(el("td", null, v)); t.appendChild(r); };
  row("service", span.service); row("span id", span.span_id); row("duration", span.duration_ms + " ms");
  if (err) { row("error kind", err.kind); row("code", err.code); row("type", err.type);
    row("message", err.message); row("error id", err.error_id || "-");
    for (const [k, v] of Object.entries(err.metadata || {})) row("meta." + k, v); }
  for (const [k, v] of Object.entries(span.attributes)) row(k, v);
  box.appendChild(t);
}
for (const tr of data.traces) {
  const spans = Object.fromEntries(tr.spans.map(s => [s.span_id, s]));
  const role = tr.roles; const originErr = {}; const keep = new Set(tr.visible);
  for (const e of tr.errors) originErr[e.origin] = e;
  const asyncIn = new Set(tr.async_edges.map(e => e.target));
  const box = el("div", "trace"); box.appendChild(el("h2", null, "trace " + tr.trace_id));
  if (tr.jaeger_link) { const a = el("a", null, "open in Jaeger"); a.href = tr.jaeger_link; box.appendChild(a); }
  const build = (sid) => { const s = spans[sid]; const d = el("details"); d.open = true;
    const sum = el("summary"); if (asyncIn.has(sid)) sum.appendChild(el("span", "async", "⇢ "));
    const tag = el("span", "span " + (role[sid] || ""), s.name); tag.dataset.role = role[sid] || "";
    tag.dataset.spanId = sid; sum.appendChild(tag);
    sum.appendChild(el("span", "meta", s.service + " · " + s.duration_ms + " ms" + (role[sid] ? " · " + role[sid] : "")));
    if (originErr[sid]) sum.appendChild(el("span", "meta", originErr[sid].kind + " " + originErr[sid].code));
    sum.addEventListener("click", (ev) => { showDetails(s, originErr[sid]); });
    d.appendChild(sum); for (const c of s.children) if (keep.has(c)) d.appendChild(build(c)); return d; };
  for (const r of tr.roots) if (keep.has(r)) box.appendChild(build(r));
  for (const p of tr.problems) box.appendChild(el("div", "problem", "! " + p));
  document.getElementById("traces").appendChild(box);
}
const flow = document.getElementById("flow");
for (const e of data.flow.edges) flow.appendChild(el("li", null, e.from + " → " + e.to + "  ×" + e.count + "  " + JSON.stringify(e.kinds)));
for (const o of data.flow.origins) flow.appendChild(el("li", null, "origin: " + o.node + "  ×" + o.count));
document.body.dataset.ready = "1";
</script></body></html>
"""


def render_html(
    analyses: list[TraceAnalysis], *, jaeger_url: str | None = None, full: bool = False
) -> str:
    """The page as a string; write it to a ``.html`` file and open it anywhere, offline."""
    data = to_json_data(analyses, jaeger_url)
    for trace_data, analysis in zip(data["traces"], analyses, strict=True):
        trace_data["visible"] = sorted(visible_spans(analysis, full))
        trace_data["roles"] = roles(analysis)
    return _PAGE.replace("__DATA__", _embed(data))
