"""What a stream instance has done: counters for operators, also exported as OTel metrics."""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Any

__all__ = ["StreamStats"]

MAX_PROBLEMS = 20


@dataclasses.dataclass
class StreamStats:
    spans_in: int = 0
    poison_records: int = 0
    traces_assembled: int = 0
    traces_in_flight: int = 0
    late_spans: int = 0
    reopened_traces: int = 0
    evicted_traces: int = 0
    paths_out: int = 0
    duplicate_paths: int = 0
    handler_errors: int = 0
    commits: int = 0
    rebalances: int = 0
    dropped_on_rebalance: int = 0
    analyse_seconds: float = 0.0
    assigned: list[str] = dataclasses.field(default_factory=list)
    errors_by_kind: Counter[tuple[str, str]] = dataclasses.field(default_factory=Counter)
    problems: list[str] = dataclasses.field(default_factory=list)

    def note_problem(self, text: str) -> None:
        """Keep the first few input problems, for the operator (bounded)."""
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(text[:200])

    def count_kind(self, kind: str, service: str) -> None:
        if len(self.errors_by_kind) < 10_000 or (kind, service) in self.errors_by_kind:
            self.errors_by_kind[(kind, service)] += 1

    def as_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["errors_by_kind"] = [
            {"kind": k, "service": s, "count": n} for (k, s), n in self.errors_by_kind.items()
        ]
        return out
