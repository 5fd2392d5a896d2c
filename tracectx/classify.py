"""Classify any exception into an `ErrorKind`.

Order: an explicit kind (a `TracedError`, or a ``tracectx_kind`` attribute) → the registry of
exception types (most specific class in the MRO wins, like httpx's exception mapping) and
predicates → the explicit cause chain → UNKNOWN. Integrations register their own types
(e.g. retriable Kafka errors as TRANSIENT) and unregister them when they are uninstrumented.
A lost worker is TRANSIENT wherever it is lost: ``BrokenProcessPool`` here, Celery's
``WorkerLostError`` in its integration.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator

from tracectx.errors import TracedError
from tracectx.kinds import ErrorKind

__all__ = [
    "classify",
    "is_kind",
    "register_exception",
    "register_predicate",
    "reset_classifiers",
    "unregister_exception",
    "unregister_predicate",
    "walk_chain",
]

Predicate = Callable[[BaseException], "ErrorKind | None"]

_lock = threading.Lock()  # serialises writers; readers use the published snapshot
_by_type: dict[type[BaseException], ErrorKind] = {}
_predicates: list[Predicate] = []
# What `_direct_kind` reads: a copy republished after every change (under `_lock`), so the
# per-error lookup neither takes the lock nor copies the tables.
_snapshot: tuple[dict[type[BaseException], ErrorKind], tuple[Predicate, ...]] = ({}, ())


def _publish() -> None:
    """Republish the snapshot; call with `_lock` held."""
    global _snapshot
    _snapshot = (dict(_by_type), tuple(_predicates))


_DEFAULT_TYPES: dict[type[BaseException], ErrorKind] = {
    TimeoutError: ErrorKind.TRANSIENT,
    ConnectionError: ErrorKind.TRANSIENT,
    InterruptedError: ErrorKind.TRANSIENT,
    MemoryError: ErrorKind.FATAL,
    SystemError: ErrorKind.FATAL,
    RecursionError: ErrorKind.FATAL,
    # + BrokenProcessPool: TRANSIENT (a pool worker died: lost work, like WorkerLostError),
    # added by `_add_late_defaults` once concurrent.futures.process is imported
}
_late_pending = True
# Severity when one kind must stand for a group: the one that most limits what callers may do.
_SEVERITY = {"FATAL": 3, "UNKNOWN": 2, "BUSINESS": 1, "TRANSIENT": 0}


def register_exception(exc_type: type[BaseException], kind: ErrorKind) -> None:
    """Classify `exc_type` (and its subclasses, unless more specific ones are registered)."""
    with _lock:
        _by_type[exc_type] = kind
        _publish()


def unregister_exception(exc_type: type[BaseException], kind: ErrorKind | None = None) -> bool:
    """Undo `register_exception`: `exc_type` goes back to its built-in kind, or to none.

    With `kind`, only a registration still mapping `exc_type` to `kind` is undone, so an
    integration's uninstrument leaves a mapping the application changed since. True if undone.
    """
    with _lock:
        current, default = _by_type.get(exc_type), _DEFAULT_TYPES.get(exc_type)
        if current is None or current == default or (kind is not None and current != kind):
            return False
        if default is None:
            del _by_type[exc_type]
        else:
            _by_type[exc_type] = default
        _publish()
        return True


def register_predicate(predicate: Predicate) -> None:
    """Add a predicate returning a kind or None; predicates run after the type table.

    Registering the same predicate again is a no-op, so integrations can call it on every
    instrument.
    """
    with _lock:
        if predicate not in _predicates:
            _predicates.append(predicate)
            _publish()


def unregister_predicate(predicate: Predicate) -> bool:
    """Undo `register_predicate`; True if `predicate` was registered."""
    with _lock:
        if predicate not in _predicates:
            return False
        _predicates.remove(predicate)
        _publish()
        return True


def reset_classifiers() -> None:
    """Back to the built-in table, no predicates."""
    with _lock:
        _by_type.clear()
        _by_type.update(_DEFAULT_TYPES)
        _predicates.clear()
        _publish()


def _direct_kind(exc: BaseException) -> ErrorKind | None:
    """The kind of `exc` itself, ignoring its cause chain and group members."""
    if isinstance(exc, TracedError):
        return exc.kind
    explicit = getattr(exc, "tracectx_kind", None)
    if isinstance(explicit, ErrorKind):
        return explicit
    table, predicates = _snapshot
    for cls in type(exc).__mro__:
        if cls in table:
            return table[cls]
    if _late_pending and _add_late_defaults():
        return _direct_kind(exc)
    for predicate in predicates:
        try:
            kind = predicate(exc)
        except Exception:
            continue
        if kind is not None:
            return kind
    return None


def _add_late_defaults() -> bool:
    """Add ``BrokenProcessPool`` to the defaults once its module is imported; True if added.

    Not imported by tracectx itself: ``concurrent.futures.process`` brings multiprocessing and
    pickle, ~10 % of ``import tracectx``. No such error can exist before the module is imported,
    so the first classification that misses the table after that adds it (a kind registered
    for it meanwhile is kept).
    """
    global _late_pending
    module = sys.modules.get("concurrent.futures.process")
    if module is None:
        return False
    with _lock:
        if not _late_pending:
            return False
        _late_pending = False
        _DEFAULT_TYPES[module.BrokenProcessPool] = ErrorKind.TRANSIENT
        _by_type.setdefault(module.BrokenProcessPool, ErrorKind.TRANSIENT)
        _publish()
    return True


def walk_chain(exc: BaseException) -> Iterator[BaseException]:
    """`exc`, then its ``__cause__``/``__context__`` chain and group members; each once."""
    seen: set[int] = set()
    stack = [exc]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        yield node
        if isinstance(node, BaseExceptionGroup):
            stack.extend(reversed(node.exceptions))
        if node.__context__ is not None and not node.__suppress_context__:
            stack.append(node.__context__)
        if node.__cause__ is not None:
            stack.append(node.__cause__)


def classify(exc: BaseException) -> ErrorKind:
    """The kind of any exception; UNKNOWN when nothing says otherwise. Never raises."""
    direct = _direct_kind(exc)
    if direct is not None:
        return direct
    if isinstance(exc, BaseExceptionGroup):
        member_kinds = [classify(member) for member in exc.exceptions]
        if member_kinds:
            return max(member_kinds, key=lambda k: _SEVERITY.get(k.base.name, 2))
    seen = {id(exc)}
    node = exc.__cause__
    while node is not None and id(node) not in seen:
        seen.add(id(node))
        direct = _direct_kind(node)
        if direct is not None:
            return direct
        node = node.__cause__
    return ErrorKind.UNKNOWN


def is_kind(exc: BaseException, kind: ErrorKind) -> bool:
    """True if `exc` or anything in its cause/context chain or group members is of `kind`.

    Custom kinds count as their base kind too (an AUTH error built on BUSINESS is BUSINESS).
    Cyclic chains are walked once.
    """
    for node in walk_chain(exc):
        direct = _direct_kind(node)
        if direct is not None and direct.is_a(kind):
            return True
    return False


reset_classifiers()
