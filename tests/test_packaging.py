"""The built wheel ships the core (typed) and every integration package under integrations/."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from tests.helpers import run_instrumented

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
    assert "tracectx/viz/renderers/html_page.js" in names  # the HTML page's assets ship
    # the library only: the demo and the embedded test services are their own distribution
    assert not any(n.startswith("tracectx_demo/") for n in names)
    assert "tracectx/embedded.py" not in names and "tests/conftest.py" not in names
    assert "tracectx/viz/renderers/html_page.css" in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "[opentelemetry_instrumentor]" in text and "tracectx_threading" in text
    for pkg in (ROOT / "integrations").glob("*/__init__.py"):
        name = pkg.parent.name
        assert f"{name}/__init__.py" in names and f"{name}/py.typed" in names
        if name == "tracectx_stream":  # a command, not an instrumentation
            assert "stream = tracectx_stream.command:register" in text
            continue
        assert f"{name} = {name}:" in text, f"{name} has no opentelemetry_instrumentor entry point"


def test_entry_points_load_instrumentors():
    from importlib.metadata import entry_points

    from opentelemetry.instrumentation.instrumentor import BaseInstrumentor

    found = {
        ep.name: ep.load()
        for ep in entry_points(group="opentelemetry_instrumentor")
        if ep.name.startswith("tracectx")
    }
    assert {
        "tracectx_threading",
        "tracectx_kafka",
        "tracectx_aiokafka",
        "tracectx_confluent_kafka",
        "tracectx_celery",
        "tracectx_asgi",
    } <= set(found)
    assert all(issubclass(cls, BaseInstrumentor) for cls in found.values())


def test_opentelemetry_instrument_loads_every_integration():
    """`opentelemetry-instrument` finds and applies tracectx's instrumentors by entry point (the
    OTel contrib ones that patch the same libraries are disabled, as docs/zero-code.md advises)."""
    code = (
        "import kafka, celery.signals as cs, threading, starlette.applications as sa\n"
        "from tracectx.patching import is_patched\n"
        "print(is_patched(kafka.KafkaProducer, 'send'))\n"
        "print(any('tracectx' in str(r) for r in cs.task_prerun.receivers))\n"
        "print(is_patched(threading.Thread, 'start'))\n"
        "print(is_patched(sa.Starlette, '__init__'))\n"
    )
    out = run_instrumented(code)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["True"] * 4


def test_core_imports_nothing_above_it():
    """Integrations and the demo depend on the core, never the reverse."""
    import ast

    above = ("tracectx_demo", "tracectx_asgi", "tracectx_celery", "tracectx_kafka")
    offenders = []
    for path in (ROOT / "tracectx").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Constant) and node.value in above:  # import_module("…")
                names = [node.value]
            offenders += [f"{path.relative_to(ROOT)}: {n}" for n in names if n.startswith(above)]
    assert not offenders


def test_subcommands_register_themselves_through_entry_points():
    from importlib.metadata import entry_points

    names = {ep.name for ep in entry_points(group="tracectx.commands")}
    assert {"graph", "demo"} <= names
    result = subprocess.run(
        [sys.executable, "-m", "tracectx", "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0 and "graph" in result.stdout and "demo" in result.stdout


def _lower_bounds(requirements: list[str]) -> dict[str, Version]:
    """Name -> the ``>=`` version of each requirement that has one."""
    bounds = {}
    for text in requirements:
        req = Requirement(text)
        for spec in req.specifier:
            if spec.operator == ">=":
                bounds[req.name] = Version(spec.version)
    return bounds


def test_lowest_constraints_pin_the_declared_lower_bounds():
    """scripts/test-lowest.sh tests exactly the versions the dependencies and extras declare as
    their minimum (and the dev extra declares the same): a bound moved without its pin fails."""
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    declared = _lower_bounds(
        [r for e in ("celery", "kafka", "aiokafka", "confluent-kafka") for r in extras[e]]
    )
    clients = {"celery", "kafka-python", "aiokafka", "confluent-kafka"}
    pins = {}
    for line in (ROOT / "ci" / "lowest-constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = line.split("==")
            pins[name] = Version(version)
    assert {n: pins.get(n) for n in clients} == {n: declared[n] for n in clients}
    # ... and the core's own dependencies (the core's unit tests run at these pins too)
    core = _lower_bounds(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    )
    assert {"opentelemetry-api", "opentelemetry-sdk", "wrapt"} <= set(core)
    assert {n: pins.get(n) for n in core} == core
    dev = _lower_bounds(extras["dev"])
    assert {n: v for n, v in dev.items() if n in clients} == {
        n: declared[n] for n in clients if n in dev
    }


def test_instrumentors_declare_the_extras_lower_bounds():
    """What each instrumentor instruments (`BaseInstrumentor` refuses to patch a client outside
    it) starts where the extra does: a wider extra would install clients left unpatched."""
    from tracectx_celery import package as celery_package
    from tracectx_kafka import package as kafka_package

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    declared = _lower_bounds(
        [r for e in ("celery", "kafka", "aiokafka", "confluent-kafka") for r in extras[e]]
    )
    instruments = _lower_bounds(
        [
            *celery_package._instruments,
            *kafka_package.KAFKA_PYTHON,
            *kafka_package.AIOKAFKA,
            *kafka_package.CONFLUENT_KAFKA,
        ]
    )
    assert instruments == {n: declared[n] for n in instruments}


def test_zero_code_guide_lists_every_instrumentor_entry_point():
    import re

    declared = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"][
            "opentelemetry_instrumentor"
        ]
    )
    section = (ROOT / "docs" / "zero-code.md").read_text()
    assert set(re.findall(r"`(tracectx_\w+)`", section)) == declared


def test_declared_pythons_are_the_ones_ci_runs():
    """Each `Programming Language :: Python :: 3.X` classifier is a Python CI tests on: the
    main run's (3.11, requires-python's floor) or one of scripts/test-pythons.sh's."""
    import re

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {
        c.rsplit(" :: ", 1)[1]
        for c in project["classifiers"]
        if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)
    }
    script = (ROOT / "scripts" / "test-pythons.sh").read_text()
    others = re.search(r"\$\{TRACECTX_PYTHONS:-([\d. ]+)\}", script).group(1).split()
    assert project["requires-python"] == ">=3.11"
    assert declared == {"3.11", *others} == {"3.11", "3.12", "3.13"}
