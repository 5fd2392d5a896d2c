"""Mermaid flowchart of the error paths, to paste into a GitHub issue (```mermaid).

Labels are cut, control characters escaped (the text often lands in a terminal first) and
Mermaid's special characters written as entities; ids are the full trace and span ids, so two
traces never share a subgraph or a node. Linear in spans and error paths: a trace with 16k
failing siblings renders in well under a second.
"""

from __future__ import annotations

from tracectx.safetext import escape_control
from tracectx.viz.analysis import ErrorPath, TraceAnalysis
from tracectx.viz.renderers.ids import graph_id
from tracectx.viz.renderers.paths import roles, visible_edges, visible_spans

__all__ = ["render_mermaid"]

_ENTITIES = str.maketrans(
    {"&": "#amp;", '"': "#quot;", "<": "#lt;", ">": "#gt;", "`": "#96;", "#": "#35;"}
)


def _text(value: str, limit: int = 120) -> str:
    return escape_control(str(value), limit).translate(_ENTITIES)


def render_mermaid(analyses: list[TraceAnalysis]) -> str:
    lines = ["flowchart TD"]
    for a in analyses:
        role_of, keep = roles(a), visible_spans(a)
        first_error: dict[str, ErrorPath] = {}  # origin → its first path: one lookup per node
        for e in a.errors:
            first_error.setdefault(e.origin, e)

        def node(sid: str, trace_id: str = a.trace_id) -> str:
            return "s" + graph_id(trace_id, sid)

        lines.append(f'  subgraph t{graph_id(a.trace_id)}["trace {_text(a.trace_id[:16], 40)}…"]')
        for sid in sorted(keep, key=lambda s: a.spans[s].start_ns):
            span = a.spans[sid]
            role = role_of.get(sid)
            suffix = f"<br/>{role}" if role else ""
            err = first_error.get(sid)
            if err:
                suffix += f"<br/>{_text(err.kind, 40)} {_text(err.code, 80)}"
            lines.append(
                f'    {node(sid)}["{_text(span.name)}<br/><i>{_text(span.service)}</i>{suffix}"]'
            )
            if role:
                lines.append(f"    class {node(sid)} {role}")
        blocking, async_edges = visible_edges(a, keep)
        lines += [f"    {node(parent)} --> {node(kid)}" for parent, kid in blocking]
        lines += [f"    {node(e.source)} -.->|{e.kind}| {node(e.target)}" for e in async_edges]
        lines.append("  end")
    lines += [
        "  classDef origin fill:#fdd,stroke:#c00,stroke-width:2px",
        "  classDef propagated fill:#ffe9b3,stroke:#b80",
        "  classDef absorbed fill:#dfd,stroke:#080",
        "  classDef escaped fill:#f6d,stroke:#909",
    ]
    return "\n".join(lines) + "\n"
