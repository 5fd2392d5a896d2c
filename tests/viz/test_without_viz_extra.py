"""`tracectx graph` on a core install (no rich, no httpx): the formats that need nothing extra
work, the others say which extra to install — never a raw ModuleNotFoundError."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tracectx import ErrorKind, new_error, traced
from tracectx.file_exporter import OTLPJsonFileExporter

# Run the CLI with rich and httpx made unimportable, as on `pip install tracectx`.
BLOCKED_CLI = r"""
import importlib.abc, sys

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("rich", "httpx"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name.split(".")[0])
        return None

sys.meta_path.insert(0, Block())
from tracectx.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.fixture
def span_file(spans, tmp_path: Path) -> Path:
    with pytest.raises(Exception), traced("checkout"), traced("charge"):
        raise new_error(ErrorKind.BUSINESS, "declined", code="E_CARD")
    path = tmp_path / "spans.jsonl"
    OTLPJsonFileExporter(path).export(spans.get_finished_spans())
    return path


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", BLOCKED_CLI, "graph", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("fmt", ["json", "mermaid", "dot", "html", "jaeger-json"])
def test_formats_needing_nothing_extra_work(span_file, fmt):
    out = run(str(span_file), "--format", fmt)
    assert out.returncode == 0, out.stderr
    assert "charge" in out.stdout and "Traceback" not in out.stderr


def test_the_terminal_format_says_which_extra_to_install(span_file):
    out = run(str(span_file))
    assert out.returncode == 2
    assert "pip install 'tracectx[viz]'" in out.stderr and "Traceback" not in out.stderr
