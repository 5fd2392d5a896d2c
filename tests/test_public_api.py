"""The public surface: __all__ in sync, typed, installable."""

from __future__ import annotations

import importlib
import importlib.metadata
from pathlib import Path

import tracectx


def test_all_is_sorted_and_resolves():
    assert list(tracectx.__all__) == sorted(tracectx.__all__)
    for name in tracectx.__all__:
        assert getattr(tracectx, name) is not None


def test_every_public_module_declares_all():
    root = Path(tracectx.__file__).parent
    for path in root.rglob("*.py"):
        if path.name.startswith("_") and path.name != "__init__.py":
            continue
        text = path.read_text()
        assert "__all__" in text, f"{path} has no __all__"


def test_package_is_typed():
    assert (Path(tracectx.__file__).parent / "py.typed").exists()


def test_instrumentor_entry_points_are_registered():
    eps = importlib.metadata.entry_points(group="opentelemetry_instrumentor")
    ours = {ep.name: ep for ep in eps if ep.value.startswith("tracectx")}
    assert "tracectx_threading" in ours
    for ep in ours.values():
        assert ep.load() is not None
