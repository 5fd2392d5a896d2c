"""Join split traces before the analysis, so an error crossing a lost hop is one path.

`join_split_traces` moves each callee root that `check_propagation` matched to a call (a
dropped hop or an in-process loss), with everything under it, into the caller's trace as the
caller's child: a copy of the spans, the input untouched. The moved root carries the evidence
(`ATTR_INFERRED_PARENT`) and its own trace id (`ATTR_SPLIT_TRACE_ID`). `analyse_joined` hands
the joined spans to `analyse` and marks every error path that crosses a join as inferred
(``exact`` False), with the join's evidence and at most its confidence.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from tracectx.viz.analysis import TraceAnalysis, analyse
from tracectx.viz.model import Span, SpanSet
from tracectx.viz.propagation_check import Finding, PropagationReport, check_propagation

__all__ = [
    "ATTR_INFERRED_PARENT",
    "ATTR_SPLIT_TRACE_ID",
    "analyse_joined",
    "join_split_traces",
]

ATTR_INFERRED_PARENT = "tracectx.viz.inferred_parent"
ATTR_SPLIT_TRACE_ID = "tracectx.viz.split_trace_id"

Key = tuple[str, str]


def _joins(report: PropagationReport) -> dict[Key, tuple[Key, Finding]]:
    """Callee root -> (caller span, finding), one caller per root."""
    out: dict[Key, tuple[Key, Finding]] = {}
    for f in report.broken:
        if f.caller is None or f.callee is None or f.caller.trace_id == f.callee.trace_id:
            continue
        callee = (f.callee.trace_id, f.callee.span_id)
        out.setdefault(callee, ((f.caller.trace_id, f.caller.span_id), f))
    return out


def join_split_traces(
    spans: SpanSet | Iterable[Span], report: PropagationReport
) -> tuple[SpanSet, dict[Key, Finding]]:
    """`spans` with every matched callee subtree moved under its caller (copies of the moved
    spans), and the findings by the joined root's new (trace id, span id)."""
    span_set = spans if isinstance(spans, SpanSet) else SpanSet(list(spans))
    joins = _joins(report)
    if not joins:
        return span_set, {}
    by_key = {(s.trace_id, s.span_id): s for s in span_set.spans}
    top: dict[Key, Key] = {}  # a span -> the root of its own trace it hangs under

    def top_of(key: Key) -> Key:
        path: list[Key] = []
        node = key
        while node not in top and len(path) <= len(by_key):
            path.append(node)
            span = by_key.get(node)
            pid = span.parent_id if span is not None else None
            parent = (node[0], pid) if pid else None
            if parent is None or parent not in by_key or parent == node or parent in path:
                top[node] = node
                break
            node = parent
        found = top.get(node, node)
        for visited in path:
            top[visited] = found
        return found

    new_trace: dict[Key, str] = {}  # joined root -> the trace it ends up in

    def trace_of(root: Key) -> str:
        seen: list[Key] = []
        node = root
        while node in joins and node not in new_trace and node not in seen:
            seen.append(node)
            node = top_of(joins[node][0])
        final = new_trace.get(node, node[0])
        for visited in seen:
            new_trace[visited] = final
        return final

    out = SpanSet(problems=list(span_set.problems))
    joined: dict[Key, Finding] = {}
    for span in span_set.spans:
        key = (span.trace_id, span.span_id)
        root = top_of(key)
        if root not in joins:
            out.spans.append(span)
            continue
        trace_id = trace_of(root)
        if key == root:
            (_, caller_id), finding = joins[root]
            attributes = {
                **span.attributes,
                ATTR_INFERRED_PARENT: "; ".join(finding.evidence),
                ATTR_SPLIT_TRACE_ID: span.trace_id,
            }
            moved = dataclasses.replace(
                span, trace_id=trace_id, parent_id=caller_id, attributes=attributes
            )
            joined[(trace_id, span.span_id)] = finding
        else:
            moved = dataclasses.replace(span, trace_id=trace_id)
        out.spans.append(moved)
    return out, joined


def analyse_joined(
    spans: SpanSet | Iterable[Span], report: PropagationReport | None = None
) -> list[TraceAnalysis]:
    """`analyse` of `spans` with split traces joined (`report` defaults to checking `spans`);
    error paths through a join are inferred, with the join's evidence."""
    span_set = spans if isinstance(spans, SpanSet) else SpanSet(list(spans))
    report = report if report is not None else check_propagation(span_set)
    joined_set, joined = join_split_traces(span_set, report)
    analyses = analyse(joined_set)
    if not joined:
        return analyses
    for a in analyses:
        for path in a.errors:
            # a join is crossed when the path goes on above the joined root
            crossings = [
                joined[(a.trace_id, sid)]
                for sid in path.span_ids[:-1]
                if (a.trace_id, sid) in joined
            ]
            for finding in crossings:
                path.exact = False
                path.confidence = min(path.confidence, finding.confidence)
                path.evidence.append(
                    f"inferred: {finding.callee.label if finding.callee else '?'} joined under "
                    f"{finding.caller.label if finding.caller else '?'} ({finding.hop} hop that "
                    f"lost its context: {'; '.join(finding.evidence)})"
                )
    return analyses
