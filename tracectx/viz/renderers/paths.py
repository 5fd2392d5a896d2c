"""What the tree renderers show: span roles per trace and the pruned set of spans to draw."""

from __future__ import annotations

from tracectx.viz.analysis import AsyncEdge, TraceAnalysis

__all__ = ["roles", "visible_edges", "visible_spans"]


_PRIORITY = {"origin": 3, "escaped": 2, "propagated": 1, "absorbed": 0}


def roles(analysis: TraceAnalysis) -> dict[str, str]:
    """span id → ``origin`` / ``escaped`` / ``propagated`` / ``absorbed`` for spans on a path.

    A span on several paths shows its strongest role (origin beats escaped beats propagated
    beats absorbed).
    """
    out: dict[str, str] = {}

    def give(sid: str, role: str) -> None:
        if _PRIORITY[role] > _PRIORITY.get(out.get(sid, ""), -1):
            out[sid] = role

    for err in analysis.errors:
        for sid in err.propagators:
            give(sid, "propagated")
        if err.absorber:
            give(err.absorber, "absorbed")
        if err.escaped:
            give(err.propagators[-1] if err.propagators else err.origin, "escaped")
        give(err.origin, "origin")
    return out


def visible_spans(analysis: TraceAnalysis, full: bool = False) -> set[str]:
    """Spans on error paths, their ancestors and async-edge ends; every span when `full`."""
    if full or not analysis.errors:
        return set(analysis.spans)
    parent_of = {c: p for p, kids in analysis.children.items() for c in kids}
    keep: set[str] = set()
    for err in analysis.errors:
        for sid in err.span_ids:
            node: str | None = sid
            while node is not None and node not in keep:
                keep.add(node)
                node = parent_of.get(node)
    for group in analysis.retries:
        if any(a in keep for a in group.attempts):
            keep.update(group.attempts)
    for edge in analysis.async_edges:
        if edge.target in keep and edge.source in analysis.spans:
            node = edge.source
            while node is not None and node not in keep:
                keep.add(node)
                node = parent_of.get(node)
    return keep


def visible_edges(
    analysis: TraceAnalysis, keep: set[str]
) -> tuple[list[tuple[str, str]], list[AsyncEdge]]:
    """The blocking (parent, child) edges and async edges between spans in `keep`."""
    blocking = [
        (parent, kid)
        for parent, kids in analysis.children.items()
        if parent in keep
        for kid in kids
        if kid in keep
    ]
    edges = [e for e in analysis.async_edges if e.source in keep and e.target in keep]
    return blocking, edges
