"""What a Celery beat dispatch tells the publish and run sides: names shared by `beat`,
`publish` and `run`, and the dispatch in progress (a context variable beat sets around its
publish, so `publish` can stamp the message without beat touching Celery's message options).

A dispatched message carries the schedule entry's name and the entry's next due time; the run
span gets the name as ``celery.beat.entry.name``. A worker that starts a scheduled run records
that it did under `started_key` in a key-value result backend (Redis and the like), so beat can
tell, at the entry's next dispatch, a run that never started from one that did.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
from collections.abc import Iterator

from tracectx import semconv as sc

__all__ = [
    "ATTR_ENTRY",
    "ATTR_LATE_S",
    "ATTR_NEXT_DUE",
    "DUE_HEADER",
    "ENTRY_HEADER",
    "EVENT_LATE",
    "MAX_ENTRY_NAME",
    "MISSED_REASON",
    "Dispatch",
    "current",
    "dispatching",
    "started_key",
]

#: The schedule entry's name, on the schedule, publish, run and missed spans.
ATTR_ENTRY = sc.ATTR_CELERY_BEAT_ENTRY
#: On the schedule span: when (epoch seconds) the entry is next due.
ATTR_NEXT_DUE = sc.ATTR_CELERY_BEAT_NEXT_DUE
#: On a run that started after its entry's next due time: by how many seconds.
ATTR_LATE_S = sc.ATTR_CELERY_BEAT_LATE_S
#: Event on such a run span (it missed its slot but ran).
EVENT_LATE = sc.EVENT_CELERY_BEAT_LATE
#: ``celery.lost`` of a ``missed <entry>`` span: no worker started the run in time.
MISSED_REASON = "not started before the next due time"
ENTRY_HEADER = "tracectx_beat_entry"
DUE_HEADER = "tracectx_beat_next_due"
MAX_ENTRY_NAME = 256


@dataclasses.dataclass(slots=True)
class Dispatch:
    """One beat dispatch: the entry, its next due time, the task ids it published."""

    entry: str
    next_due: float | None
    task_ids: list[str] = dataclasses.field(default_factory=list)


_current: contextvars.ContextVar[Dispatch | None] = contextvars.ContextVar(
    "tracectx_celery_dispatch", default=None
)


def current() -> Dispatch | None:
    """The beat dispatch publishing in this context, if any."""
    return _current.get()


@contextlib.contextmanager
def dispatching(dispatch: Dispatch) -> Iterator[Dispatch]:
    """Make `dispatch` current while beat publishes it."""
    token = _current.set(dispatch)
    try:
        yield dispatch
    finally:
        _current.reset(token)


def started_key(task_id: str) -> str:
    """Result-backend key a worker sets when it starts scheduled run `task_id`."""
    return f"tracectx-beat-started-{task_id}"
