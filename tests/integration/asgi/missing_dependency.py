"""Run OTel's auto-instrumentation loader in a subprocess where one library cannot be imported,
and report what the loader logged about a tracectx entry point (shared by the ASGI and Celery
tests)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]

_SCRIPT = r"""
import importlib.abc, importlib.metadata, json, logging, os, sys

target, blocked = sys.argv[1], sys.argv[2]


class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == blocked or name.startswith(blocked + "."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, Block())
others = [
    ep.name
    for ep in importlib.metadata.entry_points(group="opentelemetry_instrumentor")
    if ep.name != target
]
os.environ["OTEL_PYTHON_DISABLED_INSTRUMENTATIONS"] = ",".join(others)
records = []


class Keep(logging.Handler):
    def emit(self, record):
        records.append(record)


logging.getLogger().addHandler(Keep())
logging.getLogger().setLevel(logging.DEBUG)
from opentelemetry.instrumentation.auto_instrumentation import _load
from opentelemetry.instrumentation.distro import DefaultDistro

_load._load_instrumentors(DefaultDistro())
try:
    __import__(target)
    error = None
except BaseException as exc:
    error = type(exc).__name__
logged = [
    r.getMessage() for r in records if r.levelno >= logging.INFO and target in r.getMessage()
]
print(json.dumps({"error": error, "logged": logged}))
"""


def run_loader_without(target: str, blocked: str) -> dict[str, Any]:
    """``{"error": <class name of importing target>, "logged": [INFO+ loader lines on it]}``."""
    out = subprocess.run(
        [sys.executable, "-c", _SCRIPT, target, blocked],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result
