"""`MemoryWindows` count windows against a plain model of what they mean: whatever shape a
window is held in (its first error alone, or a set and a queue), adds and counts answer as the
model does, and expired windows are dropped."""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from tracectx.alerting.windows import MemoryWindows


@dataclass
class ModelWindow:
    window: float
    newest: float = float("-inf")
    ids: list[tuple[str, float]] = field(default_factory=list)  # arrival order


class Model:
    """Count windows as documented: an id counts once while in its window; ids leave in
    arrival order once at or before ``ts - window``; a window whose newest error left it is
    dropped."""

    def __init__(self) -> None:
        self.table: dict[str, ModelWindow] = {}

    def _drop(self, now: float) -> None:
        for key in [k for k, w in self.table.items() if w.newest + w.window <= now]:
            del self.table[key]

    @staticmethod
    def _forget(win: ModelWindow, floor: float) -> None:
        while win.ids and win.ids[0][1] <= floor:
            del win.ids[0]

    def add(self, key: str, error_id: str, ts: float, window: float) -> int | None:
        self._drop(ts)
        win = self.table.setdefault(key, ModelWindow(window))
        win.window = window
        self._forget(win, ts - window)
        if any(i == error_id for i, _ in win.ids):
            return None
        win.ids.append((error_id, ts))
        win.newest = max(win.newest, ts)
        return len(win.ids)

    def count(self, key: str, ts: float, window: float) -> int:
        self._drop(ts)
        win = self.table.get(key)
        if win is None:
            return 0
        self._forget(win, ts - window)
        return len(win.ids)


WINDOWS = {"k1": 5.0, "k2": 10.0}  # one length per key, as a rule gives its groups
ops = st.lists(
    st.tuples(
        st.sampled_from(["add", "add", "count"]),
        st.sampled_from(sorted(WINDOWS)),
        st.sampled_from(["a", "b", "c"]),
        st.integers(0, 40).map(float),
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(ops)
def test_count_windows_answer_as_the_model(steps):
    windows, model = MemoryWindows(), Model()
    for op, key, error_id, ts in steps:
        window = WINDOWS[key]
        if op == "add":
            assert windows.add(key, error_id, ts, window) == model.add(key, error_id, ts, window)
        else:
            assert windows.count(key, ts, window) == model.count(key, ts, window)
        windows.expire(ts)
        model._drop(ts)
        assert windows.held == len(model.table)
