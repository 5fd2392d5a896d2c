"""A self-contained HTML page (one file, no network) answering "where was this error born, how
did it travel, who swallowed it".

The page is a waterfall per trace — bars on a time axis whose idle stretches are drawn as
breaks, zoomable by drag or wheel under a minimap of the whole trace, services coloured, async
consumers under the producer that published them (dashed hop), exceptions and retries marked on
the bar where they happened — with each error path drawn over it from its origin through every
propagator to the absorber, the escape or "unobserved"; spans off every path are folded into
"… N spans off the error paths" rows, and only the rows in view are built, so a 100k-span trace
scrolls smoothly. Above it, the trace's paths as cards in order of impact (outcome, exact or
inferred, retries grouped, recovered retries last and folded); below, the error flow across all traces as an SVG graph with the top
origins; on the right, the clicked span's errors, stack trace, events, attributes and Jaeger
link. Filters by kind, service and outcome, and a search over error ids, trace ids and metadata
values, apply to all of it.

Span names and attributes are attacker-controlled. The data goes in as JSON inside a
``<script type="application/json">`` block with ``<``, ``>`` and ``&`` escaped, and the page
builds its DOM with ``textContent`` only — nothing from a span is ever parsed as HTML. The
Content-Security-Policy allows no network at all and runs only the page's own script and style,
pinned by their SHA-256, so even markup that slipped in could not execute. The script and style
live next to this module (``html_page.js``, ``html_page.css``) and are inlined; the fleet flow
page (``flow_html.py``) inlines the same two through `fill_page`.

Data over `COMPRESS_OVER` characters of JSON (a 100k-span trace is about 25 MB) goes in deflated
and in base64 behind ``z:`` (`pack`), which the page inflates with the browser's own
DecompressionStream: a page a sixth the size, that opens faster; base64 cannot hold markup.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re
from importlib import resources
from typing import Any

from tracectx.viz.analysis import TraceAnalysis
from tracectx.viz.renderers.html_data import COMPRESS_OVER, dumps, pack, page_data

__all__ = ["COMPRESS_OVER", "fill_page", "render_html"]


# Markup characters, and control and bidi characters that could garble the page's source when
# viewed; they can only stand inside JSON strings, where \uXXXX means the same.
_UNSAFE = re.compile("[&<>\x7f-\x9f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _embed(data: Any) -> str:
    return _UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", pack(dumps(data)))


@functools.cache
def _asset(name: str) -> str:
    return resources.files("tracectx.viz.renderers").joinpath(name).read_text(encoding="utf-8")


def _sha256(text: str) -> str:
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy"
 content="default-src 'none'; style-src __STYLE_HASH__; script-src __SCRIPT_HASH__">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>tracectx — error propagation</title>
<style>__CSS__</style></head><body>
<header><h1>tracectx — error propagation</h1>
<label>trace <select id="trace"></select></label>
<input id="search" type="search" placeholder="search error id, trace id, metadata value…" aria-label="search">
<span id="kinds" class="chips"></span>
<select id="service" aria-label="service"><option value="">all services</option></select>
<span id="outcomes" class="chips"></span></header>
<div id="wrap"><main id="main">
<section id="summary"></section>
<section id="paths"><h2>Error paths</h2><ol id="pathlist"></ol></section>
<section id="timeline"><div id="mini"><div class="lbl">whole trace <span class="muted">· drag or wheel to zoom</span></div>
<div id="miniwrap"><canvas id="minimap" height="40"></canvas><div id="miniwin" hidden></div></div></div>
<div id="axis"><div class="lbl">span <button id="zoomreset" type="button" hidden>reset zoom</button>
<span id="namegrip" title="drag to resize the name column"></span></div><div class="ticks"></div></div>
<div id="scroller"><div id="spacer"></div><div id="rows"></div><svg id="overlay" aria-hidden="true"></svg></div>
<div id="zoomsel" hidden></div></section>
<section id="flow"><h2>Error flow across traces</h2>
<div id="flowwrap"><div id="flowbox"><svg id="flowsvg"></svg></div><div id="origins"></div></div>
<div id="nodetraces"></div></section>
</main><aside id="side"><h2>Details</h2><div id="details">Click a span.</div></aside></div>
<script type="application/json" id="data">__DATA__</script>
<script>__JS__</script></body></html>
"""


def fill_page(template: str, data: Any) -> str:
    """`template` with the page's style and script inlined (``__CSS__``, ``__JS__``), pinned by
    their hashes in its CSP (``__STYLE_HASH__``, ``__SCRIPT_HASH__``), and `data` embedded as
    inert JSON at ``__DATA__``. Shared by the trace page and the fleet flow page."""
    css, js = _asset("html_page.css"), _asset("html_page.js")
    head, tail = template.split("__DATA__")
    head = (
        head.replace("__STYLE_HASH__", _sha256(css))
        .replace("__SCRIPT_HASH__", _sha256(js))
        .replace("__CSS__", css)
    )
    return head + _embed(data) + tail.replace("__JS__", js)


def render_html(
    analyses: list[TraceAnalysis], *, jaeger_url: str | None = None, full: bool = False
) -> str:
    """The page as a string; write it to a ``.html`` file and open it anywhere, offline.

    `jaeger_url` adds "open in Jaeger" links (the trace with its paths found, and each span);
    `full` opens every span instead of folding those off the error paths.
    """
    return fill_page(_PAGE, page_data(analyses, jaeger_url=jaeger_url, full=full))
