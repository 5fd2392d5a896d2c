"""Mermaid flowchart of the error paths, to paste into a GitHub issue (```mermaid)."""

from __future__ import annotations

from tracectx.viz.analysis import TraceAnalysis
from tracectx.viz.renderers.paths import roles, visible_edges, visible_spans

__all__ = ["render_mermaid"]

_ENTITIES = {"&": "#amp;", '"': "#quot;", "<": "#lt;", ">": "#gt;", "`": "#96;", "\n": " "}


def _text(value: str) -> str:
    return "".join(_ENTITIES.get(c, c) for c in value)[:120]


def render_mermaid(analyses: list[TraceAnalysis]) -> str:
    lines = ["flowchart TD"]
    for a in analyses:
        role_of, keep = roles(a), visible_spans(a)
        lines.append(f'  subgraph t{a.trace_id[:8]}["trace {a.trace_id[:16]}…"]')
        for sid in sorted(keep, key=lambda s: a.spans[s].start_ns):
            span = a.spans[sid]
            role = role_of.get(sid)
            suffix = f"<br/>{role}" if role else ""
            err = next((e for e in a.errors if e.origin == sid), None)
            if err:
                suffix += f"<br/>{_text(err.kind)} {_text(err.code)}"
            lines.append(
                f'    s{sid}["{_text(span.name)}<br/><i>{_text(span.service)}</i>{suffix}"]'
            )
            if role:
                lines.append(f"    class s{sid} {role}")
        blocking, async_edges = visible_edges(a, keep)
        lines += [f"    s{parent} --> s{kid}" for parent, kid in blocking]
        lines += [f"    s{e.source} -.->|{e.kind}| s{e.target}" for e in async_edges]
        lines.append("  end")
    lines += [
        "  classDef origin fill:#fdd,stroke:#c00,stroke-width:2px",
        "  classDef propagated fill:#ffe9b3,stroke:#b80",
        "  classDef absorbed fill:#dfd,stroke:#080",
        "  classDef escaped fill:#f6d,stroke:#909",
    ]
    return "\n".join(lines) + "\n"
