"""The propagation check's section (`tracectx graph --check-propagation`): as JSON-ready data
(the JSON output's ``propagation`` and the page's), and as text for the terminal.

Every text from a span goes through `escape_control` (span names and attribute values are
outside data).
"""

from __future__ import annotations

from typing import Any

from tracectx.safetext import escape_control
from tracectx.viz.propagation_check import Finding, HealthRow, PropagationReport, SpanRef

__all__ = ["MAX_SHOWN", "propagation_data", "propagation_lines"]

MAX_SHOWN = 50  # findings per kind the terminal lists (the JSON has them all)


def _ref(ref: SpanRef | None) -> dict[str, str] | None:
    if ref is None:
        return None
    return {
        "trace_id": ref.trace_id,
        "span_id": ref.span_id,
        "service": ref.service,
        "operation": ref.operation,
    }


def _finding(f: Finding) -> dict[str, Any]:
    data: dict[str, Any] = {
        "kind": f.kind,
        "hop": f.hop,
        "caller": _ref(f.caller),
        "callee": _ref(f.callee),
        "confidence": f.confidence,
        "evidence": list(f.evidence),
    }
    if f.offset_ms is not None:
        data["offset_ms"] = f.offset_ms
    return data


def _row(r: HealthRow) -> dict[str, Any]:
    return {
        "caller": r.caller,
        "callee": r.callee,
        "hop": r.hop,
        "seen": r.seen,
        "connected": r.connected,
        "broken": r.broken,
        "broken_share": round(r.broken_share, 4),
    }


def propagation_data(report: PropagationReport) -> dict[str, Any]:
    """The report as JSON-ready data: ``findings``, ``split_traces``, ``health``."""
    return {
        "findings": [_finding(f) for f in report.findings],
        "split_traces": [
            {"trace_ids": list(s.trace_ids), "hops": [_finding(f) for f in s.hops]}
            for s in report.splits
        ],
        "health": [_row(r) for r in report.health],
    }


def _safe(value: Any, limit: int = 200) -> str:
    return escape_control(str(value), limit)


def propagation_lines(report: PropagationReport) -> list[str]:
    """The report as plain lines: the health table, then findings by kind (at most
    `MAX_SHOWN` of each), then split traces."""
    lines = ["propagation health (calls seen, connected, broken):"]
    if not report.health:
        lines.append("  no calls between services or threads found")
    for r in report.health:
        lines.append(
            f"  {_safe(r.caller, 60)} -> {_safe(r.callee, 60)} over {r.hop}: {r.seen} seen, "
            f"{r.connected} connected, {r.broken} broken ({r.broken_share:.0%} broken)"
        )
    if not report.findings:
        lines.append("no hop lost its context")
    for kind in ("dropped-hop", "in-process-loss", "orphan", "in-flight", "clock-skew"):
        found = report.of_kind(kind)
        if not found:
            continue
        lines.append(f"{kind} ({len(found)}):")
        for f in found[:MAX_SHOWN]:
            lines.append(f"  {_safe(f.summary, 400)}  (confidence {f.confidence:.2f})")
            for why in f.evidence:
                lines.append(f"      {_safe(why, 400)}")
        if len(found) > MAX_SHOWN:
            lines.append(f"  … {len(found) - MAX_SHOWN} more (all in --format json)")
    if report.splits:
        lines.append(f"split traces ({len(report.splits)}):")
        for s in report.splits[:MAX_SHOWN]:
            lines.append("  " + " -> ".join(_safe(t, 80) for t in s.trace_ids))
    return lines
