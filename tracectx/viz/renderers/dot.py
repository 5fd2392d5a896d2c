"""Graphviz DOT of the error paths (``dot -Tsvg``)."""

from __future__ import annotations

from tracectx.viz.analysis import TraceAnalysis
from tracectx.viz.renderers.paths import roles, visible_edges, visible_spans

__all__ = ["render_dot"]

_FILL = {"origin": "#ffdddd", "propagated": "#ffe9b3", "absorbed": "#ddffdd", "escaped": "#ffccee"}


def _q(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")[:200] + '"'


def render_dot(analyses: list[TraceAnalysis]) -> str:
    lines = ["digraph tracectx {", "  rankdir=TB; node [shape=box, style=filled, fillcolor=white];"]
    for a in analyses:
        role_of, keep = roles(a), visible_spans(a)
        lines.append(f"  subgraph cluster_{a.trace_id} {{ label={_q('trace ' + a.trace_id)};")
        for sid in keep:
            span = a.spans[sid]
            role = role_of.get(sid, "")
            label = f"{span.name} | {span.service} {role}".strip()
            fill = _FILL.get(role, "white")
            lines.append(f'    "{sid}" [label={_q(label)}, fillcolor="{fill}"];')
        blocking, async_edges = visible_edges(a, keep)
        lines += [f'    "{parent}" -> "{kid}";' for parent, kid in blocking]
        lines += [
            f'    "{e.source}" -> "{e.target}" [style=dashed, label={_q(e.kind)}];'
            for e in async_edges
        ]
        lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"
