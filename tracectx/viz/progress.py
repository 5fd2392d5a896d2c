"""What long work of ``tracectx graph`` is doing, on stderr, only when stderr is a terminal.

A 500 MB span file takes minutes to read, parse and analyse; without a sign of life users kill
it. Each stage (reading a file with a byte bar, parsing, analysing, rendering) shows a rich
progress line with the elapsed time, removed when done. When stderr is not a TTY (piped,
redirected to a file, CI logs) nothing is shown at all, so no escape sequence or progress text
ever lands in captured output. Built on rich's `Progress` (the viz extra) rather than
hand-drawn bars; without rich installed there is simply no progress display.
"""

from __future__ import annotations

import sys
from types import TracebackType
from typing import IO, TYPE_CHECKING

from tracectx.safetext import escape_control

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

__all__ = ["Stages"]


class Stages:
    """Progress of named stages on `stream` (stderr by default), shown only when `stream` is a
    terminal. Use as a context manager; `stage` starts a stage (ending the previous one),
    `advance` moves a stage that has a `total`. Disabled, every call does nothing."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        out = stream if stream is not None else sys.stderr
        isatty = getattr(out, "isatty", None)
        self.enabled = bool(isatty and isatty())
        self._task: TaskID | None = None
        self._progress: Progress | None = None
        if self.enabled:
            try:
                from rich.console import Console
                from rich.progress import (
                    BarColumn,
                    DownloadColumn,
                    Progress,
                    SpinnerColumn,
                    TextColumn,
                    TimeElapsedColumn,
                )
            except ModuleNotFoundError:  # core install without the viz extra
                self.enabled = False
                return
            self._progress = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(),
                DownloadColumn(),
                TimeElapsedColumn(),
                console=Console(file=out, force_terminal=True),
                transient=True,
            )

    def __enter__(self) -> Stages:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self) -> None:
        """Remove the progress display (before writing output to the same terminal)."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def stage(self, description: str, total: int | None = None) -> None:
        """Start the stage `description` (escaped: it may hold a file name); `total` gives it
        a bar (bytes), None a spinner."""
        if self._progress is None:
            return
        if self._task is not None:
            self._progress.remove_task(self._task)
        self._task = self._progress.add_task(escape_control(description, 120), total=total)
        self._progress.refresh()  # shown at once, even when the stage ends within a refresh

    def advance(self, amount: int) -> None:
        """Move the current stage's bar by `amount`."""
        if self._progress is not None and self._task is not None:
            self._progress.advance(self._task, amount)

    def report(self, what: str, step: int, total: int | None) -> None:
        """`load_spans`'s `progress` protocol: ``step == 0`` starts the stage `what` (with a
        bar of `total` when given), a positive `step` advances it."""
        if step == 0:
            self.stage(what, total)
        else:
            self.advance(step)
