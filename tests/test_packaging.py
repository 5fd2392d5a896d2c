"""The built wheel ships the core (typed) and every integration package under integrations/."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.integration
def test_wheel_contains_core_and_integrations(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    [wheel] = tmp_path.glob("tracectx-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "tracectx/py.typed" in names and "tracectx/viz/analysis.py" in names
    for pkg in (ROOT / "integrations").glob("*/__init__.py"):
        assert f"{pkg.parent.name}/__init__.py" in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "[opentelemetry_instrumentor]" in text and "tracectx_threading" in text
