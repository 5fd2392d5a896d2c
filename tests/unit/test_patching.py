"""One patching mechanism: wrapt wrappers that keep what the original says, undone exactly."""

from __future__ import annotations

import inspect
from typing import Any

from tracectx.patching import Patches, is_patched


class Base:
    def inherited(self) -> str:
        """Inherited doc."""
        return "base"


class Target(Base):
    def method(self, x: int, *, y: int = 0) -> int:
        """Adds."""
        return x + y

    @classmethod
    def make(cls) -> str:
        return cls.__name__

    @staticmethod
    def static(v: int) -> int:
        return v * 2


def tagging(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    return ("patched", wrapped(*args, **kwargs))


def test_wrapped_methods_keep_name_doc_signature_and_binding():
    patches = Patches()
    originals = dict(vars(Target))
    for name in ("method", "make", "static", "inherited"):
        patches.wrap(Target, name, tagging)
    try:
        t = Target()
        assert t.method(1, y=2) == ("patched", 3)
        assert Target.make() == ("patched", "Target")
        assert t.static(2) == ("patched", 4)
        assert t.inherited() == ("patched", "base")
        assert Target.method.__doc__ == "Adds." and Target.method.__name__ == "method"
        assert Target.method.__wrapped__ is originals["method"]
        assert inspect.signature(Target.method) == inspect.signature(originals["method"])
        assert is_patched(Target, "method")
    finally:
        patches.undo()
    assert not patches
    for name in ("method", "make", "static"):
        assert vars(Target)[name] is originals[name]
    assert "inherited" not in vars(Target)  # inherited again, not a copy left behind
    assert not is_patched(Target, "method")
    assert Target().method(1) == 1


def test_undo_is_newest_first_so_stacked_patches_unwind():
    first, second = Patches(), Patches()
    original = vars(Target)["method"]
    first.wrap(Target, "method", tagging)
    second.wrap(Target, "method", tagging)
    assert Target().method(1) == ("patched", ("patched", 1))
    second.undo()
    assert Target().method(1) == ("patched", 1)
    first.undo()
    assert vars(Target)["method"] is original
