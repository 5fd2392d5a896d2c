"""A light ``import tracectx``: the heavy parts load on first use, not at import."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import tracectx
from tracectx import bootstrap

#: Modules a bare ``import tracectx`` must not load (rich comes with structlog's dev renderer).
HEAVY = (
    "rich",
    "structlog",
    "tenacity",
    "asyncio",
    "tracectx.alerting",
    "tracectx.viz",
    "tracectx.executors",
    "tracectx.logging",
    "tracectx.bootstrap",
    "opentelemetry.sdk",
    "importlib.metadata",
    "multiprocessing",  # concurrent.futures.process, for BrokenProcessPool
    "hmac",  # secrets
)


def _modules_after(code: str) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys, json; print(json.dumps(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return json.loads(out.stdout)


def test_import_tracectx_loads_none_of_the_heavy_modules():
    loaded = _modules_after("import tracectx")
    assert [m for m in loaded if m.startswith(HEAVY)] == []


def test_core_use_still_loads_no_rich_or_structlog():
    """Recording an error and binding metadata need neither structlog nor rich."""
    loaded = _modules_after(
        "import tracectx\n"
        "with tracectx.traced('op'):\n"
        "    tracectx.bind(a=1)\n"
        "    tracectx.record_error(tracectx.new_error(tracectx.ErrorKind.BUSINESS, 'x'))"
    )
    assert [m for m in loaded if m.startswith(("rich", "structlog", "tenacity"))] == []


def test_broken_process_pool_is_transient_though_classify_never_imports_it():
    from concurrent.futures.process import BrokenProcessPool

    from tracectx.classify import reset_classifiers

    assert tracectx.classify(BrokenProcessPool("a worker died")) is tracectx.ErrorKind.TRANSIENT
    reset_classifiers()
    assert tracectx.classify(BrokenProcessPool("again")) is tracectx.ErrorKind.TRANSIENT


def test_every_lazy_name_resolves_to_its_module_object():
    for name in tracectx.__all__:
        value = getattr(tracectx, name)
        assert getattr(value, "__name__", name) == name or name in {"Alerting"}
    assert callable(tracectx.classify)  # a function, though tracectx.classify is also a module


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        tracectx.nope  # noqa: B018


def test_disabled_instrumentations_use_entry_point_names(monkeypatch):
    """OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=kafka turns off OTel's kafka-python
    instrumentation, not tracectx's; tracectx_kafka turns off ours."""
    monkeypatch.setenv("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", "kafka, tracectx_celery")
    wanted = bootstrap._wanted_integrations(None)
    assert "kafka" in wanted and "celery" not in wanted
