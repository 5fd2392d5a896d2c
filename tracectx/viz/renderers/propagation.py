"""The propagation check's section (`tracectx graph --check-propagation`): as JSON-ready data
(the JSON output's ``propagation``), as text for the terminal, and as a static section of the
HTML page.

Every text from a span goes through `escape_control` (span names and attribute values are
outside data), and into the page through `html.escape`. The page's section is plain HTML put
in place after the page is filled (no script, no style attribute: the page's CSP stays as it
is, and the page's own script and data are untouched).
"""

from __future__ import annotations

import html
from typing import Any

from tracectx.safetext import escape_control
from tracectx.viz.propagation_check import Finding, HealthRow, PropagationReport, SpanRef

__all__ = [
    "MAX_SHOWN",
    "add_propagation_section",
    "propagation_data",
    "propagation_html",
    "propagation_lines",
]

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
    """The report as JSON-ready data: ``findings``, ``split_traces``, ``health``, ``orphans``
    (by service and operation)."""
    return {
        "findings": [_finding(f) for f in report.findings],
        "split_traces": [
            {"trace_ids": list(s.trace_ids), "hops": [_finding(f) for f in s.hops]}
            for s in report.splits
        ],
        "health": [_row(r) for r in report.health],
        "orphans": [
            {
                "service": g.service,
                "operation": g.operation,
                "hop": g.hop,
                "orphans": g.orphans,
                "in_flight": g.in_flight,
            }
            for g in report.orphans
        ],
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
    if report.orphans:
        lines.append("orphans by service and operation (parent never arrived, not yet):")
    for g in report.orphans[:MAX_SHOWN]:
        lines.append(
            f"  {_safe(g.service, 60)}: {_safe(g.operation, 120)} ({g.hop}): "
            f"{g.orphans} orphaned, {g.in_flight} in flight"
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


def _h(value: Any, limit: int = 200) -> str:
    return html.escape(_safe(value, limit))


def propagation_html(report: PropagationReport) -> str:
    """The report as a ``<section id="propagation">``: health table, findings with their
    evidence (at most `MAX_SHOWN` per kind), split traces."""
    out = ['<section id="propagation"><h2>Where the trace broke</h2>']
    out.append(
        "<table><thead><tr><th>caller</th><th>callee</th><th>hop</th><th>seen</th>"
        "<th>connected</th><th>broken</th><th>% broken</th></tr></thead><tbody>"
    )
    for r in report.health:
        out.append(
            f"<tr><td>{_h(r.caller, 80)}</td><td>{_h(r.callee, 80)}</td><td>{_h(r.hop)}</td>"
            f"<td>{r.seen}</td><td>{r.connected}</td><td>{r.broken}</td>"
            f"<td>{r.broken_share:.0%}</td></tr>"
        )
    out.append("</tbody></table>")
    if report.orphans:
        out.append("<h3>orphans by service and operation</h3><ul>")
        for g in report.orphans[:MAX_SHOWN]:
            out.append(
                f"<li>{_h(g.service, 60)}: {_h(g.operation, 120)} ({_h(g.hop)}): "
                f"{g.orphans} orphaned, {g.in_flight} in flight</li>"
            )
        out.append("</ul>")
    if not report.findings:
        out.append('<p class="muted">No hop lost its context.</p>')
    for kind in ("dropped-hop", "in-process-loss", "orphan", "in-flight", "clock-skew"):
        found = report.of_kind(kind)
        if not found:
            continue
        out.append(f"<h3>{kind} ({len(found)})</h3><ol>")
        for f in found[:MAX_SHOWN]:
            evidence = "".join(f"<li>{_h(why, 400)}</li>" for why in f.evidence)
            out.append(
                f"<li><b>{_h(f.summary, 400)}</b> "
                f'<span class="muted">confidence {f.confidence:.2f}</span>'
                f"<ul>{evidence}</ul></li>"
            )
        out.append("</ol>")
        if len(found) > MAX_SHOWN:
            out.append(f'<p class="muted">… {len(found) - MAX_SHOWN} more in --format json</p>')
    if report.splits:
        out.append(f"<h3>split traces ({len(report.splits)})</h3><ol>")
        for split in report.splits[:MAX_SHOWN]:
            out.append("<li>" + " → ".join(_h(t, 80) for t in split.trace_ids) + "</li>")
        out.append("</ol>")
    out.append("</section>")
    return "".join(out)


_MAIN_END = "</main>"


def add_propagation_section(page: str, report: PropagationReport) -> str:
    """`page` (from `render_html`) with the section at the end of its main column (before
    ``</body>`` if the page has no ``</main>``). The page's data comes after ``</main>`` and
    has every ``<`` escaped, so the first ``</main>`` is the page's own."""
    section = propagation_html(report)
    at = page.find(_MAIN_END)
    if at < 0:
        at = page.rfind("</body>")
    if at < 0:
        return page + section
    return page[:at] + section + page[at:]
