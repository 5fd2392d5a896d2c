"""Terminal: a rich tree of each trace's error paths, with kinds, codes, metadata, durations.

Every text from a span goes through `escape_control` and into rich `Text` (never markup), so a
span name cannot set the window title, clear the screen, recolour the output or reorder it.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console, Group
from rich.text import Text
from rich.tree import Tree

from tracectx.safetext import escape_control
from tracectx.viz.analysis import ErrorPath, TraceAnalysis
from tracectx.viz.renderers.paths import roles, visible_spans
from tracectx.viz.sources.fields import SOURCE_TRACE_ID

__all__ = ["MAX_TREE_DEPTH", "render_terminal"]

MAX_TREE_DEPTH = 16  # deeper spans are listed flat under the last level: no unreadable indent


def _safe(value: Any, limit: int = 200) -> str:
    return escape_control(str(value), limit)


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
    text.append(_safe(span.name), style="bold" if role else "")  # Text, not markup
    text.append(f"  {_safe(span.service)}  {span.duration_ms:.1f} ms", style="dim")
    if role:
        tag, style = _STYLE[role]
        text.append(f"  {tag}", style=style)
    return text


def _detail(err: ErrorPath) -> Text:
    text = Text("   ")
    text.append(_safe(err.kind, 40), style="bold red")
    if err.code:
        text.append(f" {_safe(err.code, 80)}")
    text.append(f"  {_safe(f'{err.error_type}: {err.message}')}")
    if err.error_id:
        text.append(f"  id={_safe(err.error_id, 80)}", style="dim")
    if err.metadata:
        meta = ", ".join(f"{k}={v}" for k, v in err.metadata.items())
        text.append(f"  {_safe(meta)}", style="blue")
    if err.remote_origin:
        text.append(f"  (origin in trace {_safe(err.remote_origin[0], 80)})", style="dim")
    return text


def _header(analysis: TraceAnalysis) -> Text:
    header = Text(f"trace {_safe(analysis.trace_id, 80)}", style="bold")
    source = next(
        (
            s.attributes[SOURCE_TRACE_ID]
            for s in analysis.spans.values()
            if SOURCE_TRACE_ID in s.attributes
        ),
        None,
    )
    if source is not None:
        header.append(f" (in the file: {_safe(source, 80)})")
    header.append(f"  {len(analysis.errors)} error path(s)", style="dim")
    return header


def _trace_tree(analysis: TraceAnalysis, full: bool, problems: bool) -> Tree:
    role_of = roles(analysis)
    keep = visible_spans(analysis, full)
    async_targets = {e.target for e in analysis.async_edges}
    origins = {e.origin: e for e in analysis.errors}
    retry_count = {g.attempts[-1]: len(g.attempts) for g in analysis.retries}
    tree = Tree(_header(analysis))
    # Depth-first without recursion: a chain of thousands of spans is a valid trace.
    stack: list[tuple[Tree, str, int]] = [
        (tree, root, 1) for root in reversed(analysis.roots) if root in keep
    ]
    while stack:
        node, sid, depth = stack.pop()
        label = _label(analysis, sid, role_of.get(sid), sid in async_targets)
        if sid in retry_count:
            label.append(f"  ×{retry_count[sid]} attempts", style="cyan")
        branch = node.add(label)
        if sid in origins:
            branch.add(_detail(origins[sid]))
        kids = [c for c in analysis.children.get(sid, []) if c in keep]
        if not kids:
            continue
        if depth < MAX_TREE_DEPTH:
            under = branch
        elif depth == MAX_TREE_DEPTH:
            under = branch.add(Text("⋮ deeper spans, listed flat", style="dim"))
        else:
            under = node  # already flat: descendants follow in order at this level
        stack.extend((under, kid, depth + 1) for kid in reversed(kids))
    if problems:
        for problem in analysis.problems[:10]:
            tree.add(Text(f"! {_safe(problem, 300)}", style="dim red"))
    return tree


def render_terminal(
    analyses: list[TraceAnalysis],
    console: Console | None = None,
    *,
    full: bool = False,
    problems: bool = True,
) -> None:
    """Print each trace's error paths (every span with `full`; without the trace's first ten
    problems when `problems` is false, e.g. because the caller prints them elsewhere)."""
    console = console or Console()
    console.print(Group(*(_trace_tree(a, full, problems) for a in analyses)))
