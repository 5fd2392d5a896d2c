"use strict";
// tracectx error propagation page. Everything from a span (names, services, attributes, events,
// messages, ids) is attacker-controlled: it only ever reaches the DOM through textContent or
// setAttribute on data-*/geometry attributes, never as markup. Ids and keys from the data are
// looked up in Maps, never used as plain-object keys.
// The same script draws the fleet flow page (D.mode "fleet": a `tracectx stream` flow snapshot,
// counts by service/operation and kind, no traces): only the flow graph, filters and search.
// A big page's data comes deflated and in base64 ("z:" first): inflated by the browser's own
// DecompressionStream, no network.
let D, FLEET, NAMES, SVCS, allKinds;
const ROW = 24, OVER = 12, SMALL = 300, SVGNS = "http://www.w3.org/2000/svg";
const readData = () => unpack(document.getElementById("data").textContent);
async function unpack(raw) {
  if (!raw.startsWith("z:")) return JSON.parse(raw);
  const bin = atob(raw.slice(2)), bytes = new Uint8Array(bin.length);
  for (let k = 0; k < bin.length; k++) bytes[k] = bin.charCodeAt(k);
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate"));
  return JSON.parse(await new Response(stream).text());
}
const PALETTE = ["#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#9c755f",
  "#8cd17d", "#ff9da7", "#499894", "#bab0ac", "#86bcb6"];
const KIND_COLOURS = new Map([["BUSINESS", "#d97706"], ["TRANSIENT", "#2563eb"], ["FATAL", "#dc2626"],
  ["UNKNOWN", "#6b7280"]]);
const OUTCOMES = ["absorbed", "escaped", "unobserved"];
const SPAN_KINDS = new Map([["S", "server"], ["C", "client"], ["P", "producer"], ["K", "consumer"], ["I", ""]]);
const ICON = {origin: "✖", propagated: "↑", absorbed: "✔", escaped: "⇡", unobserved: "⊘"};

// Control characters (C0, DEL, C1, bidi overrides, line separators) are shown as escapes.
const CTRL = /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
const CTRL_KEEP_LINES = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
const NAMED = new Map([["\n", "\\n"], ["\r", "\\r"], ["\t", "\\t"]]);
const escChar = (c) => NAMED.get(c) || (c.charCodeAt(0) <= 0xff
  ? "\\x" + c.charCodeAt(0).toString(16).padStart(2, "0") : "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0"));
const clean = (s) => String(s).replace(CTRL, escChar);
const cleanBlock = (s) => String(s).replace(CTRL_KEEP_LINES, escChar);

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = clean(text);
  return e;
}
function svg(tag, attrs) {
  const e = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  return e;
}
const $ = (id) => document.getElementById(id);
const kindColour = (kind) => {
  if (!kind) return "#9ca3af";  // a fleet count whose kind is not known
  if (KIND_COLOURS.has(kind)) return KIND_COLOURS.get(kind);
  let h = 0; for (const c of String(kind)) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  return PALETTE[h % PALETTE.length];
};
const svcColour = (svc) => PALETTE[svc % PALETTE.length];
const fmtUs = (us) => us >= 1e6 ? (us / 1e6).toFixed(2) + " s" : us >= 1000 ? (us / 1000).toFixed(us >= 1e5 ? 0 : 1) + " ms" : us.toFixed(0) + " µs";
const safeUrl = (u) => typeof u === "string" && /^https?:\/\//i.test(u) ? u : null;
const get = (obj, i) => obj && Object.prototype.hasOwnProperty.call(obj, String(i)) ? obj[String(i)] : undefined;

// ---- per-trace model ------------------------------------------------------------------------
function prepare(tr) {
  if (tr.ready) return tr;
  const n = tr.id.length;
  tr.n = n;
  let rows = null;  // span id → row, built when first asked (a Map of 100k ids costs 100 ms)
  tr.rowOf = (id) => { if (!rows) rows = new Map(tr.id.map((s, i) => [s, i])); return rows.get(id); };
  tr.open = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    if (tr.end[i] <= i + 1) continue;
    if (D.full) { tr.open[i] = 2; continue; }
    let anyOn = false;
    for (let j = i + 1; j < tr.end[i]; j = tr.end[j]) if (tr.on[j] === "1") { anyOn = true; break; }
    tr.open[i] = anyOn ? 1 : 0;
  }
  tr.rootMode = D.full ? 2 : 1;
  tr.roleOf = (i) => get(tr.role, i) || "";
  tr.retryOf = new Map();
  tr.retries.forEach((g) => g.attempts.forEach((r, k) => tr.retryOf.set(r, {g, k})));
  tr.pathsOf = new Map();
  tr.paths.forEach((p, k) => {
    p.trace = tr; p.index = k;
    p.chain = [p.origin, ...p.propagators, ...(p.absorber >= 0 ? [p.absorber] : [])];
    p.rows = [...p.chain, ...p.handled_by];
    for (const r of p.rows) { if (!tr.pathsOf.has(r)) tr.pathsOf.set(r, []); tr.pathsOf.get(r).push(p); }
  });
  tr.marksOf = new Map();
  for (const [r, t, kind] of tr.marks) { if (!tr.marksOf.has(r)) tr.marksOf.set(r, []); tr.marksOf.get(r).push([t, kind]); }
  buildScale(tr);
  tr.asyncByTarget = new Map();
  for (const e of tr.async_edges) {
    if (e.trace !== null && e.trace !== tr.trace_id) continue;
    const s = tr.rowOf(e.source);
    if (s === undefined) continue;
    if (!tr.asyncByTarget.has(e.target)) tr.asyncByTarget.set(e.target, []);
    tr.asyncByTarget.get(e.target).push({source: s, target: e.target, kind: e.kind});
  }
  tr.ready = true;
  return tr;
}
const nodeName = (tr, i) => SVCS[tr.svc[i]] + ": " + NAMES[tr.name[i]];
const isAsyncRow = (tr, i) => get(tr.async, i) !== undefined;
function crossesAsync(tr, a, b) {  // is there an async hop between row a and its ancestor b?
  for (let x = a, steps = 0; x >= 0 && steps <= tr.n; steps++) {
    if (x === b) return false;
    if (isAsyncRow(tr, x)) return true;
    x = tr.parent[x];
  }
  return true;  // b is not above a: the error came over a link
}
function lastOnPath(p) { return p.chain[p.chain.length - (p.absorber >= 0 ? 2 : 1)]; }

// ---- state & filters ------------------------------------------------------------------------
const state = {trace: null, path: null, row: -1, kinds: new Set(), outcomes: new Set(OUTCOMES),
  service: "", term: "", node: null, vis: [], gaps: new Map(), posOf: null, view: [0, 1], nameW: 400,
  maxDepth: 1, laneW: 0, recoveredOpen: false, cards: 100};

let filterGen = 0;  // bumped when a filter changes: each path's verdict is computed once per change
function pathMatches(p) {
  if (p.matchGen !== filterGen) { p.matchGen = filterGen; p.match = pathMatchesNow(p); }
  return p.match;
}
function pathMatchesNow(p) {
  const tr = p.trace;
  if (!state.kinds.has(p.kind) || !state.outcomes.has(p.outcome)) return false;
  if (state.service !== "" && !p.rows.some((r) => String(tr.svc[r]) === state.service)) return false;
  const t = state.term.trim().toLowerCase();
  if (!t) return true;
  const hay = [p.error_id || "", tr.trace_id, p.code, p.message, p.type,
    ...Object.values(p.metadata).map(String), ...p.rows.map((r) => tr.id[r])];
  return hay.some((h) => String(h).toLowerCase().includes(t));
}

// ---- timeline -------------------------------------------------------------------------------
// Rows are laid out in index space (pre-order, folded subtrees skipped); time goes through a
// scale whose idle gaps (tr.gaps) are squeezed into breaks, then through the zoomed view
// (state.view, in scale units). Bars, marks and the overlay are placed in pixels of the lane.
// A busy stretch between breaks gets at least MIN_BUSY of the busy width, so the few spans after
// a long hop are readable too; each stretch is linear, with its own ticks.
const GAP_DRAWN = 0.03, MIN_BUSY = 0.14, MAX_PATHS = 300;  // shares of the busy time's width
function buildScale(tr) {
  const total = Math.max(tr.duration_us || 0, 0);
  const cuts = [];
  let t = 0;
  for (const [a, b] of tr.gaps) { if (a >= t && b > a && b <= total) { cuts.push([t, a, false], [a, b, true]); t = b; } }
  cuts.push([t, Math.max(total, t), false]);
  const busy = Math.max(cuts.reduce((sum, [a, b, gap]) => sum + (gap ? 0 : b - a), 0), 1e-3);
  const segs = [];
  let u = 0;
  for (const [a, b, gap] of cuts) {
    const width = gap ? busy * GAP_DRAWN : cuts.length > 1 ? Math.max(b - a, busy * MIN_BUSY) : b - a;
    segs.push({t0: a, t1: b, u0: u, u1: u + width, gap});
    u += width;
  }
  tr.segs = segs; tr.U = Math.max(u, 1e-3);
}
function segAt(tr, t, key) {  // the last segment starting at or before t (binary search)
  const s = tr.segs;
  let lo = 0, hi = s.length - 1;
  while (lo < hi) { const mid = (lo + hi + 1) >> 1; if (s[mid][key] <= t) lo = mid; else hi = mid - 1; }
  return s[lo];
}
function tToU(tr, t) {
  const g = segAt(tr, t, "t0");
  if (t >= g.t1) return g.t1 > g.t0 ? g.u1 : g.u0;
  return g.u0 + (t - g.t0) / (g.t1 - g.t0) * (g.u1 - g.u0);
}
function uToT(tr, u) {
  const g = segAt(tr, u, "u0");
  if (u >= g.u1) return g.t1;
  return g.t0 + (u - g.u0) / Math.max(g.u1 - g.u0, 1e-12) * (g.t1 - g.t0);
}
const laneW = () => Math.max(($("scroller").clientWidth || 800) - state.nameW, 50);
function xOf(t, w) {  // pixels from the lane's left edge
  const [a, b] = state.view;
  return (tToU(state.trace, t) - a) / (b - a) * w;
}
const zoomed = () => state.view[0] > 1e-9 || state.view[1] < state.trace.U - 1e-9;
function setView(a, b) {
  if (!state.trace) return;
  const U = state.trace.U, min = Math.max(U * 1e-6, 1e-3);
  if (b < a) [a, b] = [b, a];
  if (b - a < min) { const m = (a + b) / 2; a = m - min / 2; b = m + min / 2; }
  if (b - a >= U) { a = 0; b = U; }
  if (a < 0) { b -= a; a = 0; }
  if (b > U) { a -= b - U; b = U; }
  state.view = [Math.max(a, 0), Math.min(b, U)];
  drawAxis(); drawMiniWindow(); schedule();
}

// text widths without touching the layout, for the name column's width
const measureCtx = document.createElement("canvas").getContext("2d");
const widthCache = new Map();
function textW(text, font) {
  const key = font + "\u0000" + text;
  let w = widthCache.get(key);
  if (w === undefined) {
    measureCtx.font = font; w = measureCtx.measureText(text).width;
    if (widthCache.size < 50000) widthCache.set(key, w);
  }
  return w;
}
const FONT = 'system-ui,-apple-system,"Segoe UI",sans-serif';
function indentStep() {
  return Math.max(3, Math.min(14, Math.floor((state.nameW - 240) * 0.45 / Math.max(state.maxDepth, 1))));
}
function fitNameColumn() {  // wide enough for the rows in view: kind, name and service uncut
  const tr = state.trace, total = $("scroller").clientWidth || 1200;
  let depth = 0;
  for (let k = 0; k < state.vis.length && k < 4000; k++) { const v = state.vis[k]; if (v >= 0) depth = Math.max(depth, Math.min(tr.depth[v], 40)); }
  state.maxDepth = depth;
  let need = 0;
  for (let k = 0; k < state.vis.length && k < 4000; k++) {
    const i = state.vis[k];
    if (i < 0) continue;
    const sk = SPAN_KINDS.get(tr.kind[i]);
    const role = tr.roleOf(i);
    const w = Math.min(tr.depth[i], 40) * 14 + 16 + (isAsyncRow(tr, i) ? 14 : 0) + (sk ? textW(sk, "10px " + FONT) + 10 : 0)
      + textW(clean(NAMES[tr.name[i]]), (role === "origin" || role === "escaped" ? "700 " : "") + "13px " + FONT) + 16
      + textW(clean(SVCS[tr.svc[i]]), "11px " + FONT) + 12 + (tr.end[i] > i + 1 ? 44 : 0);
    need = Math.max(need, w);
  }
  state.nameW = Math.round(Math.max(Math.min(280, total * 0.4), Math.min(need + 10, total * 0.5, total - 360)));
  applyNameW();
}
function applyNameW() {
  $("timeline").style.setProperty("--name", state.nameW + "px");
}

function layout() {
  const tr = state.trace, out = [], gaps = new Map();
  const stack = [[-1, 0, tr.n, tr.rootMode, 0]];
  while (stack.length) {
    const f = stack[stack.length - 1];
    if (f[1] >= f[2]) { stack.pop(); if (f[4]) { out.push(-f[0] - 2); gaps.set(f[0], f[4]); } continue; }
    const j = f[1]; f[1] = tr.end[j];
    if (f[3] === 2 || tr.on[j] === "1") {
      out.push(j);
      if (tr.open[j] && tr.end[j] > j + 1) stack.push([j, j + 1, tr.end[j], tr.open[j], 0]);
    } else f[4] += tr.end[j] - j;
  }
  state.vis = out; state.gaps = gaps;
  const posOf = new Int32Array(tr.n).fill(-1);
  out.forEach((v, k) => { if (v >= 0) posOf[v] = k; });
  state.posOf = posOf;
  $("spacer").style.height = (out.length * ROW) + "px";
}
function posOf(i) {  // the row's line, or its nearest shown ancestor's
  const tr = state.trace;
  for (let x = i, steps = 0; x >= 0 && steps <= tr.n; steps++, x = tr.parent[x]) if (state.posOf[x] >= 0) return state.posOf[x];
  return -1;
}
function toggle(i) {
  const tr = state.trace;
  if (tr.open[i]) tr.open[i] = 0;
  else {
    let anyOn = false;
    for (let j = i + 1; j < tr.end[i]; j = tr.end[j]) if (tr.on[j] === "1") { anyOn = true; break; }
    tr.open[i] = anyOn && !D.full ? 1 : 2;
  }
  layout(); paint();
}
function showGap(parent) {
  const tr = state.trace;
  if (parent < 0) tr.rootMode = 2; else tr.open[parent] = 2;
  layout(); paint();
}
function rowLabels(tr, i, box) {  // after the duration: what went wrong here, retries, outcome
  for (const p of tr.pathsOf.get(i) || []) {
    if (p.origin !== i) continue;
    const b = el("span", "badge", p.kind + (p.code ? " " + p.code : ""));
    b.style.color = kindColour(p.kind);
    box.appendChild(b);
  }
  const rt = tr.retryOf.get(i);
  if (rt) {
    const {g, k} = rt;
    const total = g.attempts.length;
    box.appendChild(el("span", "retry", k === 0
      ? "×" + total + " attempts, " + (g.succeeded ? "recovered" : "failed")
      : "attempt " + (k + 1) + "/" + total));
  }
  const ends = new Set();
  for (const p of tr.pathsOf.get(i) || []) {
    if ((p.outcome === "escaped" || p.outcome === "unobserved") && lastOnPath(p) === i && pathMatches(p)) ends.add(p.outcome);
  }
  for (const o of ends) box.appendChild(el("span", "outc " + o, (ICON[o] || "") + " " + o));
}
function buildRow(k, w) {
  const tr = state.trace, v = state.vis[k];
  if (v < 0) {
    const parent = -v - 2, count = state.gaps.get(parent);
    const r = el("div", "row gap");
    r.style.top = (k * ROW) + "px";
    r.dataset.gapParent = String(parent);
    const name = el("div", "name");
    const depth = parent < 0 ? 0 : tr.depth[parent] + 1;
    name.style.paddingLeft = (Math.min(depth, 40) * indentStep() + 20) + "px";
    name.appendChild(el("span", null, "… " + count + " span" + (count === 1 ? "" : "s") + " off the error paths — show"));
    r.appendChild(name);
    r.addEventListener("click", () => showGap(parent));
    return r;
  }
  const i = v, role = tr.roleOf(i);
  const r = el("div", "row" + (tr.err[i] === "1" ? " err" : "") + (i === state.row ? " cur" : ""));
  r.style.top = (k * ROW) + "px";
  r.dataset.row = String(i);
  r.setAttribute("data-span-id", tr.id[i]);
  if (role) r.dataset.role = role;
  const unobserved = (tr.pathsOf.get(i) || []).some((p) => p.outcome === "unobserved" && lastOnPath(p) === i);
  if (unobserved) r.dataset.outcome = "unobserved";
  if (state.path && state.path.trace === tr && state.path.rows.includes(i)) r.classList.add("onsel");
  const name = el("div", "name");
  name.style.paddingLeft = (Math.min(tr.depth[i], 40) * indentStep()) + "px";
  const hasKids = tr.end[i] > i + 1;
  const tog = el("span", "tog", hasKids ? (tr.open[i] ? "▾" : "▸") : "");
  if (hasKids) tog.addEventListener("click", (ev) => { ev.stopPropagation(); toggle(i); });
  name.appendChild(tog);
  const from = get(tr.async, i);
  if (from !== undefined) {
    const m = el("span", "asyncmark", "⇢");
    m.title = clean("async hop: published by " + NAMES[tr.name[from]]);
    name.appendChild(m);
    r.setAttribute("data-async-from", tr.id[from]);
  }
  const sk = SPAN_KINDS.get(tr.kind[i]);
  if (sk) name.appendChild(el("span", "sk", sk));
  const tag = el("span", "span" + (role ? " " + role : ""), NAMES[tr.name[i]]);
  tag.dataset.role = role;
  tag.title = clean(NAMES[tr.name[i]]);
  tag.setAttribute("data-span-id", tr.id[i]);
  name.appendChild(tag);
  name.appendChild(el("span", "svc", SVCS[tr.svc[i]]));
  if (hasKids && !tr.open[i]) name.appendChild(el("span", "svc", "(+" + (tr.end[i] - i - 1) + ")"));
  r.appendChild(name);
  const lane = el("div", "lane");
  const s = tr.start[i], e = s + tr.dur[i];
  const x1 = xOf(s, w), x2 = Math.max(xOf(e, w), x1 + 2);
  const bl = Math.max(x1, -4), br = Math.min(x2, w + 4);
  if (br > bl) {
    const bar = el("div", "bar");
    bar.style.left = bl + "px"; bar.style.width = Math.max(br - bl, 2) + "px";
    bar.style.background = svcColour(tr.svc[i]);
    lane.appendChild(bar);
  }
  const marks = tr.marksOf.get(i);
  if (marks) {
    for (const [t, kind] of marks) {
      const x = xOf(t, w);
      if (x < -6 || x > w + 6) continue;
      const m = el("span", "mk " + (kind === "x" ? "mx" : "mr"), kind === "x" ? "✖" : "↻");
      m.style.left = (Math.min(Math.max(x, bl), br) - 5) + "px";
      m.title = (kind === "x" ? "exception" : "retry") + " at +" + fmtUs(t);
      m.dataset.t = String(t);
      lane.appendChild(m);
    }
  }
  const lab = el("span", "lab");
  lab.appendChild(el("span", "dur", fmtUs(tr.dur[i])));
  rowLabels(tr, i, lab);
  const clampX = (x) => Math.min(Math.max(x, 0), w);  // a bar out of view: its label at that edge
  lab.dataset.bl = String(clampX(bl)); lab.dataset.br = String(clampX(br));
  if (br <= 0) lab.prepend(el("span", "dur", "◂"));
  else if (bl >= w) lab.appendChild(el("span", "dur", "▸"));
  lab.dataset.marks = marks ? "1" : "";
  lane.appendChild(lab);
  r.appendChild(lane);
  r.addEventListener("click", () => { if (!dragged) selectRow(i); });
  return r;
}
function placeLabels(rows, w) {  // after the bar if it fits, else before it, else over it
  const labs = rows.map((r) => r.querySelector(".lab")).filter(Boolean);
  const widths = labs.map((l) => l.offsetWidth);  // one layout for all rows
  labs.forEach((l, k) => {
    const lw = widths[k], bl = +l.dataset.bl, br = +l.dataset.br, pad = l.dataset.marks ? 9 : 5;
    let x;
    if (br + pad + lw <= w - 2) x = br + pad;
    else if (bl - pad - lw >= 0) x = bl - pad - lw;
    else { x = Math.max(0, w - 2 - lw); l.classList.add("over"); }
    l.style.left = x + "px";
  });
}
let frame = 0;
function paint() {
  frame = 0;
  const sc = $("scroller");  // read geometry before touching the DOM: no forced layout per frame
  const geo = {top: sc.scrollTop, h: sc.clientHeight || 400, w: sc.clientWidth || 800};
  const w = Math.max(geo.w - state.nameW, 50);
  const small = state.vis.length <= SMALL;  // a small trace is built whole: no jumps, all in the DOM
  const first = small ? 0 : Math.max(0, Math.floor(geo.top / ROW) - OVER);
  const last = small ? state.vis.length : Math.min(state.vis.length, Math.ceil((geo.top + geo.h) / ROW) + OVER);
  const rows = [];
  for (let k = first; k < last; k++) rows.push(buildRow(k, w));
  $("rows").replaceChildren(...rows);
  $("rows").classList.toggle("dim", !!(state.path && state.path.trace === state.trace));
  placeLabels(rows, w);
  drawOverlay(first, last, geo);
  if (state.laneW !== w) { state.laneW = w; drawAxis(); drawMinimap(); }
}
function schedule() { if (!frame) frame = requestAnimationFrame(paint); }

function drawOverlay(first, last, geo) {
  const tr = state.trace, ov = $("overlay"), top = geo.top, h = geo.h;
  const x0 = state.nameW, lw = Math.max(geo.w - x0, 50);  // the lane starts where the name column ends
  ov.setAttribute("width", String(geo.w)); ov.setAttribute("height", String(h));
  ov.style.top = top + "px";
  const X = (i) => x0 + xOf(tr.start[i], lw);
  const Y = (k) => k * ROW + ROW / 2 - top;
  const parts = [];
  // idle gaps squeezed into breaks
  for (const g of tr.segs) {
    if (!g.gap) continue;
    const xa = x0 + xOf(g.t0, lw), xb = x0 + xOf(g.t1, lw);
    if (xb < x0 || xa > geo.w) continue;
    const b = svg("g", {class: "brk"});
    b.appendChild(svg("rect", {x: Math.max(xa, x0), y: 0, width: Math.max(Math.min(xb, geo.w) - Math.max(xa, x0), 1), height: h}));
    b.appendChild(svg("path", {d: `M${xa} 0 V${h} M${xb} 0 V${h}`}));
    parts.push(b);
  }
  // async edges: dashed, from the publishing span to the consumer
  for (let k = first; k < last; k++) {
    const v = state.vis[k];
    if (v < 0) continue;
    for (const e of tr.asyncByTarget.get(v) || []) {
      const ks = posOf(e.source);
      if (ks < 0) continue;
      const xs = X(e.source), xt = X(v), ys = Y(ks), yt = Y(k);
      const p = svg("path", {class: "async-edge", d: `M${xs} ${ys} C${xs - 18} ${ys + 8} ${xt - 18} ${yt - 8} ${xt - 2} ${yt}`,
        "data-source": tr.id[e.source], "data-target": tr.id[v], "data-kind": e.kind});
      const t = svg("title"); t.textContent = clean("async " + e.kind + ": " + NAMES[tr.name[e.source]] + " ⇢ " + NAMES[tr.name[v]]);
      p.appendChild(t);
      parts.push(p);
    }
  }
  // error paths: origin ● → each propagator → absorber ✔ / escape ⇡ / unobserved ⊘. At most
  // MAX_PATHS of those touching the view, best first: the selected one, those born in view, those
  // with another row in view, those only passing through (thousands of lines into one batch span
  // would hide everything else and cost seconds).
  const tiers = [[], [], [], []];
  for (const p of tr.paths) {
    if (!pathMatches(p)) continue;
    const ks = p.rows.map(posOf);
    if (ks.some((k) => k < 0)) continue;
    let lo = ks[0], hi = ks[0], inView = false;
    for (const k of ks) { if (k < lo) lo = k; if (k > hi) hi = k; if (k >= first && k < last) inView = true; }
    if (hi < first || lo > last) continue;
    const born = ks[0] >= first && ks[0] < last;
    tiers[p === state.path ? 0 : born ? 1 : inView ? 2 : 3].push(p);
  }
  const drawn = tiers.flat().slice(0, MAX_PATHS);
  state.undrawn = tiers.flat().length - drawn.length;
  for (const p of drawn) {
    const colour = kindColour(p.kind), g = svg("g", {class: "epath" + (state.path === p ? " selp" : ""),
      "data-path": p.index, "data-kind": p.kind, stroke: colour, fill: colour});
    const seg = (a, b, async, cls) => {
      const ka = posOf(a), kb = posOf(b), xa = X(a) - 3, xb = X(b) - 3, ya = Y(ka), yb = Y(kb);
      const xm = Math.max(Math.min(xa, xb) - 10, x0 + 2);
      g.appendChild(svg("path", {class: "seg" + (async ? " async" : "") + (cls ? " " + cls : ""),
        d: `M${xa} ${ya} H${xm} V${yb} H${xb}`, "data-from": tr.id[a], "data-to": tr.id[b]}));
      g.appendChild(svg("path", {d: `M${xb} ${yb} l-6 -4 v8 z`, stroke: "none"}));
    };
    for (let c = 0; c + 1 < p.chain.length; c++) seg(p.chain[c], p.chain[c + 1], crossesAsync(tr, p.chain[c], p.chain[c + 1]));
    const tail = p.chain[p.chain.length - 1];
    for (const hnd of p.handled_by) seg(tail, hnd, true, "handler");
    const xo = X(p.origin) - 3, yo = Y(posOf(p.origin));
    g.appendChild(svg("circle", {cx: xo, cy: yo, r: 5, stroke: "#fff", "stroke-width": 1.5, class: "mark-origin"}));
    const end = lastOnPath(p), xe = X(tail) - 3, ye = Y(posOf(tail));
    if (p.outcome === "absorbed" && p.absorber >= 0) {
      g.appendChild(svg("circle", {cx: xe, cy: ye, r: 6, fill: "#16a34a", stroke: "#fff", class: "mark-absorbed"}));
    } else if (p.outcome === "escaped") {
      const xt = X(end) - 3, yt = Y(posOf(end));
      g.appendChild(svg("path", {class: "seg mark-escaped", d: `M${xt} ${yt} V${yt - 9}`, stroke: "#a21caf"}));
      g.appendChild(svg("path", {d: `M${xt} ${yt - 12} l-4 5 h8 z`, fill: "#a21caf", stroke: "none"}));
    } else if (p.outcome === "unobserved") {
      const xt = X(end) - 3, yt = Y(posOf(end));
      g.appendChild(svg("circle", {cx: xt, cy: yt, r: 7, fill: "none", stroke: "#64748b", "stroke-dasharray": "2 2", class: "mark-unobserved"}));
    }
    parts.push(g);
  }
  // nothing of the lanes' drawing reaches into the name column when zoomed
  const clip = svg("clipPath", {id: "laneclip"});
  clip.appendChild(svg("rect", {x: x0, y: -40, width: lw, height: h + 80}));
  const body = svg("g", {"clip-path": "url(#laneclip)"});
  body.replaceChildren(...parts);
  ov.replaceChildren(clip, body);
}

// ---- time axis: round ticks per busy stretch, breaks labelled with the idle time --------------
function niceStep(raw) {
  const p = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 5]) if (m * p >= raw - 1e-12) return m * p;
  return 10 * p;
}
function tickFormat(step, maxT) {
  const [div, unit] = maxT >= 1e6 ? [1e6, " s"] : maxT >= 1e3 ? [1e3, " ms"] : [1, " µs"];
  const dec = Math.min(6, Math.max(0, Math.ceil(-Math.log10(step / div) - 1e-9)));
  return (t) => (t / div).toFixed(dec) + unit;
}
function drawAxis() {
  const tr = state.trace, ticks = $("axis").querySelector(".ticks");
  if (!tr) return;
  const w = laneW(), [va, vb] = state.view, items = [];
  const placed = [];
  const free = (a, b) => placed.every(([c, d]) => b + 6 <= c || a >= d + 6);
  const put = (text, x, cls) => {
    const tw = textW(text, "11px " + FONT) + 2;
    const a = Math.min(Math.max(x - tw / 2, 0), w - tw);
    if (!free(a, a + tw)) return;
    placed.push([a, a + tw]);
    const t = el("span", cls, text);
    t.style.left = a + "px";
    items.push(t);
  };
  const gaps = tr.segs.filter((g) => g.gap && xOf(g.t1, w) >= 0 && xOf(g.t0, w) <= w);
  for (const g of gaps) {
    const xa = xOf(g.t0, w), xb = xOf(g.t1, w);
    const band = el("span", "brkband");
    band.style.left = Math.max(xa, 0) + "px"; band.style.width = Math.max(Math.min(xb, w) - Math.max(xa, 0), 1) + "px";
    band.title = "idle " + fmtUs(g.t1 - g.t0) + ": no span runs (a break in the axis)";
    items.push(band);
  }
  for (const g of gaps) put("⋯ " + fmtUs(g.t1 - g.t0), (xOf(g.t0, w) + xOf(g.t1, w)) / 2, "tick brk");
  for (const g of tr.segs) {
    if (g.gap || g.t1 <= g.t0 && tr.segs.length > 1) continue;
    const ta = Math.max(g.t0, uToT(tr, va)), tb = Math.min(g.t1, uToT(tr, vb));
    if (tb < ta) continue;
    const usPerPx = (g.t1 > g.t0 ? (g.t1 - g.t0) / (g.u1 - g.u0) : 1) * (vb - va) / w;
    const step = niceStep(Math.max(usPerPx * 90, 0.1));  // the data's resolution is 0.1 µs
    const fmt = tickFormat(step, Math.max(tb, step));
    let n = 0;
    for (let t = Math.ceil(ta / step - 1e-9) * step; t <= tb + step * 1e-9 && n < 200; t += step, n++) {
      const tt = Math.round(t / step) * step;
      put(fmt(tt), xOf(tt, w), "tick");
    }
  }
  ticks.replaceChildren(...items);
  $("zoomreset").hidden = !zoomed();
}

// ---- minimap: the whole trace, the view as a window; drag to zoom ------------------------------
function drawMinimap() {
  const tr = state.trace, cv = $("minimap"), w = laneW(), H = 40;
  if (!tr) return;
  cv.width = w; cv.height = H;
  const g = cv.getContext("2d");
  g.clearRect(0, 0, w, H);
  const U = tr.U, n = tr.n || 1, X = (t) => tToU(tr, t) / U * w;
  for (const s of tr.segs) {
    if (!s.gap) continue;
    g.fillStyle = "#e5e7eb"; g.fillRect(s.u0 / U * w, 0, Math.max((s.u1 - s.u0) / U * w, 1), H);
  }
  // one pixel buffer: 100k spans are a few hundred thousand pixel writes, not 100k draw calls
  const img = g.getImageData(0, 0, w, H), px = new Uint32Array(img.data.buffer);
  const rgba = (hex) => { const v = parseInt(hex.slice(1), 16); return (255 << 24 | (v & 255) << 16 | (v >> 8 & 255) << 8 | v >> 16) >>> 0; };
  const colours = PALETTE.map(rgba), red = rgba("#dc2626");
  const put = (i, c) => {
    const x1 = Math.max(0, Math.floor(X(tr.start[i]))), x2 = Math.min(w - 1, Math.max(x1, Math.ceil(X(tr.start[i] + tr.dur[i])) - 1));
    const y = Math.floor(i / n * (H - 3)) + 1;
    for (let yy = y; yy < y + 2; yy++) { const base = yy * w; for (let x = x1; x <= x2; x++) px[base + x] = c; }
  };
  for (let i = 0; i < tr.n; i++) if (tr.err[i] !== "1") put(i, colours[tr.svc[i] % colours.length]);
  for (let i = 0; i < tr.n; i++) if (tr.err[i] === "1") put(i, red);  // errors on top
  g.putImageData(img, 0, 0);
  drawMiniWindow();
}
function drawMiniWindow() {
  const tr = state.trace, w = laneW(), win = $("miniwin");
  if (!tr) return;
  const a = state.view[0] / tr.U * w, b = state.view[1] / tr.U * w;
  win.style.left = a + "px"; win.style.width = Math.max(b - a, 2) + "px";
  win.hidden = !zoomed();
}

// ---- zoom: drag a range (minimap, axis or lanes), wheel on the axis or minimap (ctrl+wheel on the lanes)
let dragged = false;
function dragZoom(box, toU, onClick, minX) {
  box.addEventListener("mousedown", (ev) => {
    if (ev.button !== 0 || !state.trace) return;
    const r = box.getBoundingClientRect(), x0 = ev.clientX;
    if (minX && x0 - r.left < minX()) return;
    const sel = $("zoomsel"), tl = $("timeline").getBoundingClientRect();
    let moved = false;
    const move = (e) => {
      if (!moved && Math.abs(e.clientX - x0) < 5) return;
      moved = true; dragged = true;
      const a = Math.min(e.clientX, x0), b = Math.max(e.clientX, x0);
      sel.hidden = false; sel.style.left = (a - tl.left) + "px"; sel.style.width = (b - a) + "px";
    };
    const up = (e) => {
      window.removeEventListener("mousemove", move); window.removeEventListener("mouseup", up);
      sel.hidden = true;
      if (moved) setView(toU(x0 - r.left), toU(e.clientX - r.left));
      else if (onClick) onClick(toU(x0 - r.left));
      setTimeout(() => { dragged = false; }, 0);
    };
    window.addEventListener("mousemove", move); window.addEventListener("mouseup", up);
  });
}
function wheelZoom(box, toU, needCtrl) {
  box.addEventListener("wheel", (ev) => {
    if ((needCtrl && !ev.ctrlKey) || !state.trace) return;
    ev.preventDefault();
    const r = box.getBoundingClientRect(), u = toU(ev.clientX - r.left), f = ev.deltaY > 0 ? 1.25 : 0.8;
    const [a, b] = state.view;
    setView(u - (u - a) * f, u + (b - u) * f);
  }, {passive: false});
}
function setupZoom() {
  const inView = (x) => state.view[0] + x / laneW() * (state.view[1] - state.view[0]);
  const whole = (x) => x / laneW() * state.trace.U;
  const ticks = $("axis").querySelector(".ticks"), mini = $("miniwrap");
  dragZoom(ticks, inView, null);
  wheelZoom(ticks, inView, false);
  dragZoom(mini, whole, (u) => { const h = (state.view[1] - state.view[0]) / 2; setView(u - h, u + h); });
  wheelZoom(mini, whole, false);
  const lanes = $("scroller");
  const inLanes = (x) => inView(x - state.nameW);
  dragZoom(lanes, inLanes, null, () => state.nameW);
  wheelZoom(lanes, inLanes, true);
  ticks.addEventListener("dblclick", () => setView(0, Infinity));
  $("zoomreset").addEventListener("click", () => setView(0, Infinity));
  const grip = $("namegrip");
  grip.addEventListener("mousedown", (ev) => {
    if (!state.trace) return;
    ev.preventDefault();
    const x0 = ev.clientX, w0 = state.nameW, total = $("scroller").clientWidth;
    const move = (e) => { state.userNameW = true; state.nameW = Math.round(Math.min(Math.max(w0 + e.clientX - x0, 160), total - 160)); applyNameW(); schedule(); };
    const up = () => { window.removeEventListener("mousemove", move); window.removeEventListener("mouseup", up); };
    window.addEventListener("mousemove", move); window.addEventListener("mouseup", up);
  });
}

// ---- trace summary and error path cards -------------------------------------------------------
function hopChip(tr, i, role) {
  return el("span", "hop " + role, (ICON[role] || "") + " " + NAMES[tr.name[i]] + " · " + SVCS[tr.svc[i]]);
}
function renderSummary() {
  const tr = state.trace, box = $("summary");
  box.replaceChildren();
  const line = el("div", "sum");
  const add = (label, value) => { const s = el("span", null, label + " "); s.appendChild(el("b", null, value)); line.appendChild(s); };
  add("trace", tr.trace_id); add("spans", tr.n); add("duration", fmtUs(tr.duration_us)); add("error paths", tr.paths.length);
  const link = safeUrl(tr.jaeger_link);
  if (link) { const a = el("a", null, "open in Jaeger"); a.href = link; a.target = "_blank"; a.rel = "noopener noreferrer"; line.appendChild(a); }
  box.appendChild(line);
  const services = [...new Set(tr.svc)].slice(0, 24);
  const legend = el("div", "sum");
  for (const s of services) { const c = el("span", null, "■ " + SVCS[s]); c.style.color = svcColour(s); legend.appendChild(c); }
  box.appendChild(legend);
  for (const p of tr.problems) box.appendChild(el("div", "problem", "! " + p));
}
function renderPaths() {
  const tr = state.trace, list = $("pathlist");
  list.replaceChildren();
  let shown = 0, group = null;
  const recovered = tr.paths.filter((p) => p.recovered && pathMatches(p)).length;
  tr.paths.forEach((p) => {
    if (!pathMatches(p)) return;
    if (++shown > state.cards) return;
    if (p.recovered && !group) {  // retries that recovered: last, folded under one line
      group = el("li", "rgroup" + (state.recoveredOpen ? " open" : ""),
        (state.recoveredOpen ? "▾ " : "▸ ") + recovered + " error" + (recovered === 1 ? "" : "s") + " recovered by a retry");
      group.addEventListener("click", () => { state.recoveredOpen = !state.recoveredOpen; renderPaths(); });
      list.appendChild(group);
    }
    const li = el("li", "path" + (state.path === p ? " sel" : "") + (p.recovered ? " recovered" : "")
      + (p.recovered && !state.recoveredOpen && state.path !== p ? " folded" : ""));
    li.style.setProperty("--k", kindColour(p.kind));
    li.dataset.path = String(p.index);
    li.dataset.outcome = p.outcome;
    const head = el("div", "head");
    head.appendChild(el("span", "kind", p.kind));
    if (p.code) head.appendChild(el("span", "code", p.code));
    head.appendChild(el("span", "msg", (p.type ? p.type + ": " : "") + p.message));
    head.appendChild(el("span", "outcome " + p.outcome, p.outcome));
    head.appendChild(el("span", "conf", p.confidence !== null && p.confidence !== undefined
      ? (p.exact ? "exact" : "inferred") + " · confidence " + Math.round(p.confidence * 100) + "%"
      : (p.exact ? "exact (error id)" : "inferred (span status)")));
    const rt = tr.retryOf.get(p.origin);
    if (rt) head.appendChild(el("span", "retry", "×" + rt.g.attempts.length + " attempts, " + (rt.g.succeeded ? "recovered" : "failed")));
    if (p.error_id) head.appendChild(el("span", "eid", "id " + p.error_id));
    li.appendChild(head);
    const chain = el("div", "chain");
    if (p.remote_origin) chain.appendChild(el("span", "hop origin", "✖ born in trace " + p.remote_origin[0] + " span " + p.remote_origin[1]));
    p.chain.forEach((r, c) => {
      if (c > 0) chain.appendChild(el("span", "arrow" + (crossesAsync(tr, p.chain[c - 1], r) ? " async" : ""), crossesAsync(tr, p.chain[c - 1], r) ? "⇢" : "→"));
      const role = c === 0 ? "origin" : r === p.absorber ? "absorbed" : "propagated";
      chain.appendChild(hopChip(tr, r, role));
    });
    for (const hnd of p.handled_by) {
      chain.appendChild(el("span", "arrow async", "⇢"));
      chain.appendChild(hopChip(tr, hnd, "absorbed"));
    }
    if (p.outcome === "escaped") { chain.appendChild(el("span", "arrow", "→")); chain.appendChild(el("span", "hop escaped", "⇡ escaped the trace")); }
    if (p.outcome === "unobserved") { chain.appendChild(el("span", "arrow", "→")); chain.appendChild(el("span", "hop unobserved", "⊘ unobserved (nobody awaited it)")); }
    li.appendChild(chain);
    for (const ev of p.evidence) li.appendChild(el("div", "conf", "· " + ev));
    li.addEventListener("click", () => selectPath(p));
    list.appendChild(li);
  });
  if (shown > state.cards) {  // a few hundred cards at a time: a big trace's list stays light
    const more = el("li", "rgroup more", "… " + (shown - state.cards) + " more paths — show " + Math.min(shown - state.cards, 200) + " more");
    more.addEventListener("click", () => { state.cards += 200; renderPaths(); });
    list.appendChild(more);
  }
  if (!shown) list.appendChild(el("li", "muted", tr.paths.length ? "No path matches the filters." : "No errors in this trace."));
}

// ---- details pane -----------------------------------------------------------------------------
function detail(tr) {  // attributes, status messages, events, links: parsed on the first click
  if (!tr.detailData) tr.detailData = JSON.parse(tr.detail);
  return tr.detailData;
}
const detailReady = (tr) => !!tr.detailData || !tr.detail.startsWith("z:");
function table(rows) {
  const t = el("table");
  for (const [k, v] of rows) { const r = el("tr"); r.appendChild(el("td", null, k)); r.appendChild(el("td", null, v)); t.appendChild(r); }
  return t;
}
function showDetails(i) {
  const tr = state.trace, box = $("details");
  if (!detailReady(tr)) {  // a big trace's details come packed: inflate once, then show
    box.replaceChildren(el("p", "muted", "Reading the trace's details…"));
    unpack(tr.detail).then((d) => { tr.detailData = d; if (state.trace === tr && state.row === i) showDetails(i); });
    return;
  }
  box.replaceChildren();
  box.appendChild(el("h2", null, NAMES[tr.name[i]]));
  const rows = [["service", SVCS[tr.svc[i]]], ["span kind", SPAN_KINDS.get(tr.kind[i]) || "internal"],
    ["span id", tr.id[i]], ["trace id", tr.trace_id], ["start", "+" + fmtUs(tr.start[i])], ["duration", fmtUs(tr.dur[i])],
    ["status", tr.err[i] === "1" ? "ERROR" : "ok"]];
  const status = get(detail(tr).status, i);
  if (status) rows.push(["status message", status]);
  const from = get(tr.async, i);
  if (from !== undefined) rows.push(["async hop", "published by " + NAMES[tr.name[from]] + " (" + tr.id[from] + ")"]);
  box.appendChild(table(rows));
  const base = safeUrl(D.jaeger_url);
  if (base) {
    const a = el("a", null, "open this span in Jaeger");
    a.href = base + "/trace/" + encodeURIComponent(tr.trace_id) + "?uiFind=" + encodeURIComponent(tr.id[i]);
    a.target = "_blank"; a.rel = "noopener noreferrer"; a.className = "jaeger";
    box.appendChild(a);
  }
  for (const p of tr.pathsOf.get(i) || []) {
    const role = p.origin === i ? "origin" : p.absorber === i || p.handled_by.includes(i) ? "absorbed" : "propagated";
    const eb = el("div", "errbox");
    eb.style.setProperty("--k", kindColour(p.kind));
    eb.appendChild(el("h3", null, ICON[role] + " " + role + " of " + p.kind + (p.code ? " " + p.code : "")));
    const er = [["error kind", p.kind], ["code", p.code || "-"], ["error id", p.error_id || "-"], ["type", p.type || "-"],
      ["message", p.message || "-"], ["outcome", p.outcome],
      ["evidence", p.exact ? "exact: followed by tracectx error id" : "inferred from span status"]];
    if (p.confidence !== null && p.confidence !== undefined) er.push(["confidence", Math.round(p.confidence * 100) + "%"]);
    p.evidence.forEach((ev) => er.push(["·", ev]));
    if (p.cause_id) er.push(["cause id", p.cause_id]);
    for (const [k, v] of Object.entries(p.metadata)) er.push(["meta." + k, v]);
    eb.appendChild(table(er));
    box.appendChild(eb);
  }
  const events = get(detail(tr).events, i) || [];
  for (const ev of events) {
    const st = ev.attributes["exception.stacktrace"];
    if (ev.name === "exception" && typeof st === "string" && Object.prototype.hasOwnProperty.call(ev.attributes, "exception.stacktrace")) {
      box.appendChild(el("h3", null, "Stack trace"));
      const pre = el("pre", "stack");
      pre.textContent = cleanBlock(st);
      box.appendChild(pre);
    }
  }
  if (events.length) {
    box.appendChild(el("h3", null, "Events (" + events.length + ")"));
    for (const ev of events) {
      const d = el("div", "ev");
      d.appendChild(el("div", "evn", ev.name));
      d.appendChild(table(Object.entries(ev.attributes).filter(([k]) => k !== "exception.stacktrace")));
      box.appendChild(d);
    }
  }
  const links = get(detail(tr).links, i) || [];
  if (links.length) {
    box.appendChild(el("h3", null, "Links"));
    box.appendChild(table(links.map(([t, s]) => ["trace " + t, "span " + s])));
  }
  const attrs = get(detail(tr).attrs, i);
  if (attrs) { box.appendChild(el("h3", null, "Attributes")); box.appendChild(table(Object.entries(attrs))); }
}

// ---- selection --------------------------------------------------------------------------------
function scrollToRow(i) {
  const k = posOf(i), sc = $("scroller");
  if (k < 0) return;
  const y = k * ROW;
  if (y < sc.scrollTop || y > sc.scrollTop + sc.clientHeight - ROW) sc.scrollTop = Math.max(0, y - sc.clientHeight / 3);
}
function revealRow(i) {  // open what hides the row: collapsed ancestors, "off the paths" gaps
  const tr = state.trace;
  let changed = false;
  for (let c = i, steps = 0; c >= 0 && steps <= tr.n; steps++) {
    const x = tr.parent[c], need = tr.on[c] === "1" ? 1 : 2;
    if (x < 0) { if (tr.rootMode < need) { tr.rootMode = need; changed = true; } break; }
    if (tr.open[x] < need) { tr.open[x] = need; changed = true; }
    c = x;
  }
  if (changed) layout();
}
function selectRow(i) {
  state.row = i;
  revealRow(i);
  scrollToRow(i);
  paint();
  showDetails(i);
}
function selectPath(p) {
  if (p.trace !== state.trace) selectTrace(p.trace);
  state.path = state.path === p ? null : p;
  renderPaths();
  selectRow(p.origin);
}
function selectTrace(tr) {
  state.trace = prepare(tr); state.path = null; state.row = -1; state.view = [0, tr.U]; state.cards = 100;
  $("trace").value = String(D.traces.indexOf(tr));
  layout(); fitNameColumn(); renderSummary(); drawAxis(); drawMinimap(); renderPaths();
  $("scroller").scrollTop = 0;
  paint();
  $("details").replaceChildren(el("p", "muted", "Click a span or an error path."));
}

// ---- error flow across traces (inline SVG) ----------------------------------------------------
const ESCAPED = "⇡ escaped", UNOBSERVED = "⊘ unobserved";
function flowModel() { return FLEET ? fleetFlowModel() : traceFlowModel(); }
function traceFlowModel() {
  const nodes = new Map(), edges = new Map();
  const node = (key) => { if (!nodes.has(key)) nodes.set(key, {key, origin: 0, absorbed: 0, through: 0, traces: new Map(), col: 0}); return nodes.get(key); };
  for (const tr of D.traces) {
    for (const p of tr.paths) {
      if (!pathMatches(p)) continue;
      const keys = p.chain.map((r) => nodeName(tr, r));
      if (p.outcome === "escaped") keys.push(ESCAPED);
      if (p.outcome === "unobserved") keys.push(UNOBSERVED);
      keys.forEach((k, c) => {
        const nd = node(k);
        nd.through++;
        nd.traces.set(tr.trace_id, (nd.traces.get(tr.trace_id) || 0) + 1);
        if (c === 0) nd.origin++;
      });
      if (p.absorber >= 0) node(nodeName(tr, p.absorber)).absorbed++;
      for (let c = 0; c + 1 < keys.length; c++) {
        if (keys[c] === keys[c + 1]) continue;
        const id = keys[c] + "\u0000" + keys[c + 1];
        if (!edges.has(id)) edges.set(id, {a: keys[c], b: keys[c + 1], count: 0, kinds: new Map()});
        const e = edges.get(id); e.count++; e.kinds.set(p.kind, (e.kinds.get(p.kind) || 0) + 1);
      }
    }
  }
  return {nodes, edges};
}
function renderFlow() {
  const {nodes, edges} = flowModel(), box = $("flowsvg");
  const keep = new Set([...nodes.values()].sort((a, b) => b.through - a.through).slice(0, 60).map((n) => n.key));
  const es = [...edges.values()].filter((e) => keep.has(e.a) && keep.has(e.b));
  for (let round = 0; round < 12; round++) {
    let moved = false;
    for (const e of es) {
      if (e.b === ESCAPED || e.b === UNOBSERVED) continue;
      const a = nodes.get(e.a), b = nodes.get(e.b);
      if (b.col < a.col + 1 && a.col < 11) { b.col = a.col + 1; moved = true; }
    }
    if (!moved) break;
  }
  const kept = [...keep].map((k) => nodes.get(k));
  // a sink sits right after its furthest source, so its edges do not run behind other columns
  for (const n of kept) {
    if (n.key === ESCAPED || n.key === UNOBSERVED) n.col = 1 + Math.max(0, ...es.filter((e) => e.b === n.key).map((e) => nodes.get(e.a).col));
  }
  const cols = new Map();
  for (const n of kept) { if (!cols.has(n.col)) cols.set(n.col, []); cols.get(n.col).push(n); }
  const W = 210, H = 40, GX = 80, GY = 14;
  let height = 0;
  for (const [c, list] of cols) {
    list.sort((a, b) => b.through - a.through);
    list.forEach((n, r) => { n.x = 10 + c * (W + GX); n.y = 10 + r * (H + GY); });
    height = Math.max(height, 10 + list.length * (H + GY));
  }
  const width = 20 + (Math.max(0, ...cols.keys()) + 1) * (W + GX);
  box.setAttribute("width", String(width)); box.setAttribute("height", String(Math.max(height, 60)));
  box.replaceChildren();
  if (!kept.length) {
    const t = svg("text", {x: 10, y: 30});
    t.textContent = FLEET && !D.edges.length && !D.origins.length ? "No error paths in the window yet." : "No error paths match the filters.";
    box.appendChild(t);
  }
  for (const e of es) {
    const a = nodes.get(e.a), b = nodes.get(e.b);
    const dominant = [...e.kinds.entries()].sort((x, y) => y[1] - x[1])[0][0];
    const x1 = a.x + W, y1 = a.y + H / 2, x2 = b.x, y2 = b.y + H / 2;
    const d = b.col > a.col ? `M${x1} ${y1} C${x1 + GX / 2} ${y1} ${x2 - GX / 2} ${y2} ${x2} ${y2}`
      : `M${a.x + W / 2} ${a.y + H} C${a.x + W / 2} ${a.y + H + 40} ${b.x + W / 2} ${b.y + H + 40} ${b.x + W / 2} ${b.y + H}`;
    const p = svg("path", {class: "edge", d, stroke: kindColour(dominant), "stroke-width": (1.5 + 2.5 * Math.log2(1 + e.count)).toFixed(1),
      "data-from": e.a, "data-to": e.b, "data-count": e.count});
    const t = svg("title");
    t.textContent = clean(e.a + " → " + e.b + "  ×" + e.count + "  (" + kindsText(e.kinds) + ")");
    p.appendChild(t);
    box.appendChild(p);
    const lbl = svg("text", {x: (x1 + x2) / 2, y: (y1 + y2) / 2 - 4, class: "cnt", "text-anchor": "middle"});
    lbl.textContent = "×" + e.count;
    box.appendChild(lbl);
  }
  for (const n of kept) {
    const sink = n.key === ESCAPED || n.key === UNOBSERVED;
    const g = svg("g", {class: "node" + (sink ? " sink" : "") + (state.node === n.key ? " sel" : ""), "data-node": n.key, transform: `translate(${n.x} ${n.y})`});
    g.appendChild(svg("rect", {width: W, height: H, rx: 5}));
    if (n.origin) g.appendChild(svg("rect", {width: 5, height: H, rx: 2, class: "originbar"}));
    const label = clean(n.key);
    const t = svg("text", {x: 10, y: 16});
    t.textContent = label.length > 32 ? label.slice(0, 31) + "…" : label;
    g.appendChild(t);
    const c = svg("text", {x: 10, y: 31, class: "cnt"});
    c.textContent = [n.origin ? "✖ " + n.origin + " born" : "", n.absorbed ? "✔ " + n.absorbed + " absorbed" : "",
      FLEET ? "· " + n.through + " path" + (n.through === 1 ? "" : "s")
        : "· " + n.traces.size + " trace" + (n.traces.size === 1 ? "" : "s")].filter(Boolean).join("  ");
    g.appendChild(c);
    const title = svg("title"); title.textContent = label; g.appendChild(title);
    g.addEventListener("click", () => selectNode(n.key));
    box.appendChild(g);
  }
  const origins = $("origins");
  origins.replaceChildren(el("h3", null, "Top origins"));
  const ol = el("ol");
  [...nodes.values()].filter((n) => n.origin).sort((a, b) => b.origin - a.origin).slice(0, 10).forEach((n) => {
    const li = el("li", null, n.key + "  ×" + n.origin);
    li.addEventListener("click", () => selectNode(n.key));
    ol.appendChild(li);
  });
  origins.appendChild(ol);
  state.flow = nodes; state.flowEdges = edges;
}
const kindsText = (kinds) => [...kinds.entries()].map(([k, v]) => (k || "kind unknown") + " " + v).join(", ");
function selectNode(key) {
  state.node = key;
  renderFlow();
  if (FLEET) { showFleetNode(key); return; }
  const n = state.flow.get(key), box = $("nodetraces");
  box.replaceChildren(el("h3", null, key + " — " + (n ? n.traces.size : 0) + " trace(s)"));
  const ul = el("ul");
  for (const [tid, count] of n ? n.traces : []) {
    const li = el("li", null, "trace " + tid + " · " + count + " path" + (count === 1 ? "" : "s"));
    li.addEventListener("click", () => {
      const tr = D.traces.find((t) => t.trace_id === tid);
      if (tr) { selectTrace(tr); $("timeline").scrollIntoView(); }
    });
    ul.appendChild(li);
  }
  box.appendChild(ul);
}

// ---- the fleet's error flow: a `tracectx stream` snapshot (counts, no traces) ---------------------
const svcOf = (key) => { const i = key.indexOf(": "); return i < 0 ? key : key.slice(0, i); };
function fleetNodeMatches(key) {
  if (state.service !== "" && svcOf(key) !== state.service) return false;
  const t = state.term.trim().toLowerCase();
  return !t || key.toLowerCase().includes(t);
}
const kindOn = (k) => k === "" || state.kinds.has(k);  // a count of unknown kind is always shown
function fleetFlowModel() {
  // Edges carry kinds; origins carry kinds; outcomes are per node without a kind. An edge is
  // kept when either end matches the service and search; its count is that of the kinds on.
  const nodes = new Map(), edges = new Map();
  const node = (key) => {
    if (!nodes.has(key)) nodes.set(key, {key, origin: 0, absorbed: 0, through: 0, in: 0, out: 0, col: 0});
    return nodes.get(key);
  };
  const addEdge = (a, b, kinds) => {
    const id = a + "\u0000" + b;
    if (!edges.has(id)) edges.set(id, {a, b, count: 0, kinds: new Map()});
    const e = edges.get(id);
    for (const [k, n] of kinds) { e.count += n; e.kinds.set(k, (e.kinds.get(k) || 0) + n); node(a).out += n; node(b).in += n; }
  };
  for (const [a, b, kinds] of D.edges) {
    if (a === b || (!fleetNodeMatches(a) && !fleetNodeMatches(b))) continue;
    const on = kinds.filter(([k]) => kindOn(k));
    if (on.length) addEdge(a, b, on);
  }
  for (const [key, kinds] of D.origins) {
    if (!fleetNodeMatches(key)) continue;
    const n = kinds.reduce((sum, [k, c]) => sum + (kindOn(k) ? c : 0), 0);
    if (n) node(key).origin += n;
  }
  for (const [key, counts] of D.outcomes) {
    if (!fleetNodeMatches(key)) continue;
    for (const [outcome, n] of counts) {
      if (!state.outcomes.has(outcome)) continue;
      if (outcome === "absorbed") node(key).absorbed += n;
      else addEdge(key, outcome === "escaped" ? ESCAPED : UNOBSERVED, [["", n]]);
    }
  }
  for (const n of nodes.values()) n.through = Math.max(n.origin + n.in, n.out + n.absorbed);
  return {nodes, edges};
}
function showFleetNode(key) {
  const n = state.flow.get(key), box = $("nodetraces");
  box.replaceChildren(el("h3", null, key + " — " + (n ? n.through + " path" + (n.through === 1 ? "" : "s") : "no path matches the filters")));
  if (!n) return;
  const ul = el("ul");
  const line = (text, other) => {
    const li = el("li", other === undefined ? "plain" : null, text);
    if (other !== undefined) li.addEventListener("click", () => selectNode(other));
    ul.appendChild(li);
  };
  if (n.origin) line("✖ born here ×" + n.origin);
  const edges = [...state.flowEdges.values()].sort((x, y) => y.count - x.count);
  for (const e of edges) if (e.b === key) line("← from " + e.a + "  ×" + e.count + "  (" + kindsText(e.kinds) + ")", e.a);
  for (const e of edges) if (e.a === key) line("→ to " + e.b + "  ×" + e.count + "  (" + kindsText(e.kinds) + ")", e.b);
  if (n.absorbed) line("✔ absorbed here ×" + n.absorbed);
  box.appendChild(ul);
}
const fmtWindow = (s) => s >= 3600 ? +(s / 3600).toFixed(1) + " h" : s >= 60 ? +(s / 60).toFixed(1) + " min" : s + " s";
function renderFleetSummary() {
  const box = $("summary"), line = el("div", "sum");
  const add = (label, value) => { const s = el("span", null, label + " "); s.appendChild(el("b", null, value)); line.appendChild(s); };
  const paths = D.origins.reduce((sum, [, kinds]) => sum + kinds.reduce((t, [, n]) => t + n, 0), 0);
  const nodes = new Set([...D.edges.flatMap(([a, b]) => [a, b]), ...D.origins.map(([k]) => k), ...D.outcomes.map(([k]) => k)]);
  add("window", D.window_s ? "last " + fmtWindow(D.window_s) : "—"); add("generated", D.generated);
  add("error paths", paths); add("edges", D.edges.length); add("nodes", nodes.size);
  box.replaceChildren(line);
  if (D.dropped) box.appendChild(el("div", "problem", "! " + D.dropped + " least-counted entries are left out of this page"));
  box.appendChild(el("div", "muted", "Error paths counted by service: operation over the stream's rolling window. "
    + "Outcomes are counted per node without a kind, so the kind filter does not narrow the absorbed, escaped and unobserved counts."));
}
function setupFleet() {
  chips("kinds", allKinds, state.kinds, "kind");
  chips("outcomes", OUTCOMES, state.outcomes, "outcome");
  const svcSel = $("service");
  const used = new Set([...D.edges.flatMap(([a, b]) => [a, b]), ...D.origins.map(([k]) => k), ...D.outcomes.map(([k]) => k)].map(svcOf));
  [...used].sort().forEach((s) => { const o = el("option", null, s); o.value = s; svcSel.appendChild(o); });
  svcSel.addEventListener("change", () => { state.service = svcSel.value; refilter(); });
  $("search").addEventListener("input", (ev) => { state.term = ev.target.value; refilter(); });
}

// ---- filters ----------------------------------------------------------------------------------
function renderTraceOptions() {
  const sel = $("trace"), active = state.term.trim() !== "" || state.service !== "" || state.kinds.size !== allKinds.length || state.outcomes.size !== OUTCOMES.length;
  sel.replaceChildren();
  D.traces.forEach((tr, i) => {
    const matching = tr.paths.filter(pathMatches).length;
    const root = tr.n ? NAMES[tr.name[0]] : "";
    const o = el("option", null, tr.trace_id.slice(0, 16) + " · " + root + " · " + matching + "/" + tr.paths.length + " errors");
    o.value = String(i);
    o.hidden = active && !matching && tr !== state.trace && !tr.trace_id.toLowerCase().includes(state.term.trim().toLowerCase());
    sel.appendChild(o);
  });
  sel.value = String(D.traces.indexOf(state.trace));
}
function chips(boxId, values, set, label) {
  const box = $(boxId);
  box.replaceChildren(el("span", null, label));
  for (const v of values) {
    const l = el("label", set.has(v) ? null : "off");
    const cb = el("input"); cb.type = "checkbox"; cb.checked = set.has(v); cb.value = v;
    cb.addEventListener("change", () => { if (cb.checked) set.add(v); else set.delete(v); l.className = cb.checked ? "" : "off"; refilter(); });
    l.appendChild(cb); l.appendChild(document.createTextNode(clean(v)));
    box.appendChild(l);
  }
}
function refilter() {
  filterGen++;
  if (FLEET) { renderFlow(); if (state.node !== null) showFleetNode(state.node); return; }
  const t = state.term.trim().toLowerCase();
  if (t) {
    const hit = D.traces.find((tr) => tr.trace_id.toLowerCase() === t) || D.traces.find((tr) => tr.paths.some(pathMatches));
    if (hit && hit !== state.trace && !state.trace.paths.some(pathMatches)) selectTrace(hit);
  }
  if (state.path && !pathMatches(state.path)) state.path = null;
  renderTraceOptions(); renderPaths(); renderFlow(); paint();
}
function setup() {
  chips("kinds", allKinds, state.kinds, "kind");
  chips("outcomes", OUTCOMES, state.outcomes, "outcome");
  const svcSel = $("service");
  const used = new Set();
  for (const t of D.traces) for (const p of t.paths) for (const r of p.rows) used.add(t.svc[r]);
  [...used].sort((a, b) => SVCS[a] < SVCS[b] ? -1 : 1).forEach((s) => { const o = el("option", null, SVCS[s]); o.value = String(s); svcSel.appendChild(o); });
  svcSel.addEventListener("change", () => { state.service = svcSel.value; refilter(); });
  $("search").addEventListener("input", (ev) => { state.term = ev.target.value; refilter(); });
  $("trace").addEventListener("change", (ev) => { selectTrace(D.traces[Number(ev.target.value)]); });
  $("scroller").addEventListener("scroll", schedule, {passive: true});
  window.addEventListener("resize", () => {
    if (!state.trace) return;
    if (state.userNameW) {
      state.nameW = Math.max(160, Math.min(state.nameW, ($("scroller").clientWidth || 800) - 320));
      applyNameW();
    } else fitNameColumn();
    state.laneW = 0; schedule();
  });
  setupZoom();
}

function startTraces() {
  setup();
  if (!D.traces.length) { $("summary").appendChild(el("p", "muted", "No traces.")); return; }
  const firstWithErrors = D.traces.find((t) => t.paths.length) || D.traces[0];
  state.trace = firstWithErrors;
  renderTraceOptions();
  selectTrace(firstWithErrors);
  const params = new URLSearchParams(location.hash.slice(1));
  const wantTrace = params.get("trace"), wantSpan = params.get("span");
  if (wantTrace) { const tr = D.traces.find((t) => t.trace_id === wantTrace); if (tr) selectTrace(tr); }
  if (wantSpan) {
    const tr = D.traces.find((t) => t.rowOf(wantSpan) !== undefined && (!wantTrace || t.trace_id === wantTrace));
    if (tr) { if (tr !== state.trace) selectTrace(tr); selectRow(tr.rowOf(wantSpan)); }
  }
}
readData().then((data) => {
  D = data; FLEET = D.mode === "fleet"; NAMES = D.names; SVCS = D.services;
  allKinds = FLEET
    ? [...new Set([...D.edges, ...D.origins].flatMap((x) => x[x.length - 1].map(([k]) => k)))].filter(Boolean).sort()
    : [...new Set(D.traces.flatMap((t) => t.paths.map((p) => p.kind)))].sort();
  allKinds.forEach((k) => state.kinds.add(k));
  if (!FLEET) D.traces.forEach(prepare);
  if (FLEET) { setupFleet(); renderFleetSummary(); } else startTraces();
  renderFlow();
  document.body.dataset.renderMs = String(Math.round(performance.now()));
  document.body.dataset.ready = "1";
});
