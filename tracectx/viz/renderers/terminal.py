"""Terminal: a rich tree of each trace's error paths, with kinds, codes, metadata, durations."""

from __future__ import annotations

from rich.console import Console, Group
from rich.text import Text
from rich.tree import Tree

from tracectx.viz.analysis import ErrorPath, TraceAnalysis
from tracectx.viz.renderers.paths import roles, visible_spans

__all__ = ["render_terminal"]

_STYLE = {
    "origin": ("✖ origin", "bold red"),
    "propagated": ("↑ propagated", "yellow"),
    "absorbed": ("✔ absorbed", "green"),
    "escaped": ("⇡ escaped", "bold magenta"),
}


def _label(analysis: TraceAnalysis, sid: str, role: str | None, async_in: bool) -> Text:
    span = analysis.spans[sid]
    text = Text()
    if async_in:
        text.append("⇢ ", style="cyan")
    text.append(span.name, style="bold" if role else "")  # Text, not markup: names are untrusted
    text.append(f"  {span.service}  {span.duration_ms:.1f} ms", style="dim")
    if role:
        tag, style = _STYLE[role]
        text.append(f"  {tag}", style=style)
    return text


def _detail(err: ErrorPath) -> Text:
    text = Text("   ")
    text.append(f"{err.kind}", style="bold red")
    if err.code:
        text.append(f" {err.code}")
    text.append(f"  {err.error_type}: {err.message}"[:200])
    if err.error_id:
        text.append(f"  id={err.error_id}", style="dim")
    if err.metadata:
        text.append(
            "  " + ", ".join(f"{k}={v}" for k, v in err.metadata.items())[:200], style="blue"
        )
    if err.remote_origin:
        text.append(f"  (origin in trace {err.remote_origin[0]})", style="dim")
    return text


def _trace_tree(analysis: TraceAnalysis, full: bool) -> Tree:
    role_of = roles(analysis)
    keep = visible_spans(analysis, full)
    async_targets = {e.target for e in analysis.async_edges}
    origins = {e.origin: e for e in analysis.errors}
    retry_count = {g.attempts[-1]: len(g.attempts) for g in analysis.retries}
    header = Text(f"trace {analysis.trace_id}", style="bold")
    header.append(f"  {len(analysis.errors)} error path(s)", style="dim")
    tree = Tree(header)

    def add(node: Tree, sid: str) -> None:
        label = _label(analysis, sid, role_of.get(sid), sid in async_targets)
        if sid in retry_count:
            label.append(f"  ×{retry_count[sid]} attempts", style="cyan")
        branch = node.add(label)
        if sid in origins:
            branch.add(_detail(origins[sid]))
        for child in analysis.children.get(sid, []):
            if child in keep:
                add(branch, child)

    for root in analysis.roots:
        if root in keep:
            add(tree, root)
    for problem in analysis.problems[:10]:
        tree.add(Text(f"! {problem}", style="dim red"))
    return tree


def render_terminal(
    analyses: list[TraceAnalysis], console: Console | None = None, *, full: bool = False
) -> None:
    """Print each trace's error paths (every span with `full`)."""
    console = console or Console()
    console.print(Group(*(_trace_tree(a, full) for a in analyses)))
