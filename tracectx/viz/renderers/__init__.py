"""Renderers of analysed traces: terminal, html, mermaid, dot, json; plus Jaeger links/export
and the fleet flow page (a ``tracectx stream`` flow snapshot as HTML).

Only the terminal renderer needs rich (the viz extra); it is imported when first used, so every
other format works on a core install.
"""

from typing import TYPE_CHECKING, Any

from tracectx.viz.renderers.dot import render_dot
from tracectx.viz.renderers.flow_html import render_flow_html
from tracectx.viz.renderers.html import render_html
from tracectx.viz.renderers.jaeger import annotated_jaeger_json, jaeger_link
from tracectx.viz.renderers.json import to_json_data
from tracectx.viz.renderers.mermaid import render_mermaid

if TYPE_CHECKING:
    from tracectx.viz.renderers.terminal import render_terminal

__all__ = [
    "annotated_jaeger_json",
    "jaeger_link",
    "render_dot",
    "render_flow_html",
    "render_html",
    "render_mermaid",
    "render_terminal",
    "to_json_data",
]


def __getattr__(name: str) -> Any:
    if name == "render_terminal":
        from tracectx.viz.renderers.terminal import render_terminal

        return render_terminal
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
