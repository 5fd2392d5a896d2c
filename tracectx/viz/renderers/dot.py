"""Graphviz DOT of the error paths (``dot -Tsvg``).

Every text is cut *before* it is escaped (a cut after escaping could leave a lone backslash
that escapes the closing quote), control characters are shown as escapes, and ids are quoted.
"""

from __future__ import annotations

from tracectx.safetext import escape_control
from tracectx.viz.analysis import TraceAnalysis
from tracectx.viz.renderers.paths import roles, visible_edges, visible_spans

__all__ = ["render_dot"]

_FILL = {"origin": "#ffdddd", "propagated": "#ffe9b3", "absorbed": "#ddffdd", "escaped": "#ffccee"}


def _q(value: str, limit: int = 200) -> str:
    """A DOT quoted string: at most `limit` characters of `value`, then escaped."""
    safe = escape_control(str(value), limit)
    return '"' + safe.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_dot(analyses: list[TraceAnalysis]) -> str:
    lines = ["digraph tracectx {", "  rankdir=TB; node [shape=box, style=filled, fillcolor=white];"]
    for a in analyses:
        role_of, keep = roles(a), visible_spans(a)
        cluster = _q("cluster_" + a.trace_id, 300)
        lines.append(f"  subgraph {cluster} {{ label={_q('trace ' + a.trace_id)};")
        for sid in keep:
            span = a.spans[sid]
            role = role_of.get(sid, "")
            label = f"{span.name} | {span.service} {role}".strip()
            fill = _FILL.get(role, "white")
            lines.append(f"    {_q(sid, 300)} [label={_q(label)}, fillcolor={_q(fill)}];")
        blocking, async_edges = visible_edges(a, keep)
        lines += [f"    {_q(parent, 300)} -> {_q(kid, 300)};" for parent, kid in blocking]
        lines += [
            f"    {_q(e.source, 300)} -> {_q(e.target, 300)} [style=dashed, label={_q(e.kind)}];"
            for e in async_edges
        ]
        lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"
