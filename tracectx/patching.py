"""Patching methods of code we don't own, undoably: the one mechanism every integration uses.

Built on wrapt, as OTel contrib does (wrapt is already an OTel instrumentation dependency): the
patched attribute is a ``FunctionWrapper``, so ``__doc__``, ``__name__``, ``__wrapped__``, the
signature and descriptor binding (methods, classmethods, staticmethods) stay the original's.
`Patches` records what one instrumentor applied and undoes it in reverse order, exactly: the
object that was in the class ``__dict__`` goes back (an inherited attribute is deleted again),
so ``uninstrument()`` mirrors ``instrument()`` line for line.

A wrapper has wrapt's signature ``wrapper(wrapped, instance, args, kwargs)``.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from typing import Any

import wrapt

__all__ = ["Patches", "Wrapper", "is_patched"]

Wrapper = Callable[[Callable[..., Any], Any, tuple[Any, ...], dict[str, Any]], Any]
_MISSING = object()
_MARK = "_self_tracectx_patch"  # wrapt keeps `_self_*` attributes on the proxy itself


class Patches:
    """The patches one instrumentor applied; `undo` removes them all, newest first."""

    def __init__(self) -> None:
        self._applied: list[tuple[Any, str, Any]] = []
        self._lock = threading.Lock()

    def wrap(self, owner: Any, name: str, wrapper: Wrapper) -> None:
        """Replace ``owner.name`` (a class or module attribute) by `wrapper` around it."""
        with self._lock:
            before = vars(owner).get(name, _MISSING)
            wrapt.wrap_function_wrapper(owner, name, wrapper)
            patched = vars(owner)[name]
            try:
                setattr(patched, _MARK, True)
            except AttributeError:  # pragma: no cover - wrapt proxies accept attributes
                pass
            self._applied.append((owner, name, before))

    def replace(
        self, owner: Any, name: str, make: Callable[[Callable[..., Any]], Callable[..., Any]]
    ) -> None:
        """Replace ``owner.name`` by ``make(original)``, a plain function given the original's
        name, docs and ``__wrapped__`` — for a method on a hot path (a pool's ``submit``), where
        wrapt's per-call binding (a proxy object per attribute lookup) costs more than the
        patch's own work. Undone by `undo` like a `wrap`."""
        with self._lock:
            before = vars(owner).get(name, _MISSING)
            original = before if before is not _MISSING else getattr(owner, name)
            patched = functools.update_wrapper(make(original), original)
            setattr(patched, _MARK, True)
            setattr(owner, name, patched)
            self._applied.append((owner, name, before))

    def undo(self) -> None:
        """Put back exactly what was there before each `wrap`, in reverse order."""
        with self._lock:
            while self._applied:
                owner, name, before = self._applied.pop()
                if before is _MISSING:
                    delattr(owner, name)
                else:
                    setattr(owner, name, before)

    def __bool__(self) -> bool:
        return bool(self._applied)

    def __iter__(self) -> Iterator[tuple[Any, str]]:
        return iter([(owner, name) for owner, name, _ in self._applied])


def is_patched(owner: Any, name: str) -> bool:
    """True if ``owner.name`` is currently a tracectx patch."""
    return bool(getattr(vars(owner).get(name), _MARK, False))
