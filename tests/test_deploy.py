"""The compose file and Dockerfile build from pinned images, and Jaeger runs a real
configuration (storage, UI config with the "error paths" links); the sdist is what MANIFEST.in
says it is."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
# an exact release: 7.4.2, 2.5.0, v0.28.1, 0.115.1 (then an optional -variant), never 7-alpine
PINNED = re.compile(r"^[^:]+:v?\d+\.\d+\.\d+(-[a-z0-9.-]+)?$")


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_every_image_is_an_exact_release():
    images = [s["image"] for s in compose()["services"].values() if "image" in s]
    froms = re.findall(r"^FROM\s+(\S+)", (ROOT / "Dockerfile").read_text(), re.M)
    assert images and froms
    assert [i for i in images + froms if not PINNED.match(i)] == []


def test_jaeger_runs_its_own_config_with_storage_and_ui():
    jaeger = compose()["services"]["jaeger"]
    mounts = dict(v.rsplit(":", 1)[0].split(":", 1) for v in jaeger["volumes"])
    config_path = next(host for host, inside in mounts.items() if inside in jaeger["command"][0])
    config = yaml.safe_load((ROOT / config_path).read_text())
    storage = config["extensions"]["jaeger_storage"]["backends"]
    query = config["extensions"]["jaeger_query"]
    assert query["storage"]["traces"] in storage
    assert "jaeger_storage" in config["service"]["extensions"]
    ui_inside = query["ui"]["config_file"]
    ui_host = next(host for host, inside in mounts.items() if inside == ui_inside)
    patterns = json.loads((ROOT / ui_host).read_text())["linkPatterns"]
    wanted = "http://localhost:8765/trace/#{traceID}"
    assert {"type": "traces", "url": wanted, "text": "error paths"} in patterns
    assert {
        "type": "tags",
        "key": "tracectx.error.id",
        "url": wanted,
        "text": "error paths",
    } in patterns
    serve = compose()["services"]["tracectx-serve"]
    assert serve["command"] == ["--jaeger", "http://jaeger:16686", "--http", "0.0.0.0:8765"]
    assert "8765:8765" in serve["ports"]


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="needs docker-compose")
def test_compose_file_is_valid():
    result = subprocess.run(
        ["docker-compose", "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.integration
def test_sdist_carries_the_library_not_the_demo_or_tests(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "build",
            "--sdist",
            "-o",
            str(tmp_path),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    [sdist] = tmp_path.glob("tracectx-*.tar.gz")
    with tarfile.open(sdist) as archive:
        names = {n.split("/", 1)[1] for n in archive.getnames() if "/" in n}
    assert "tracectx/hooks.py" in names and "integrations/tracectx_kafka/__init__.py" in names
    assert "LICENSE" in names and "MANIFEST.in" in names
    assert not [n for n in names if n.startswith(("demo/", "tests/", "deploy/", "bench/"))]
    manifest = (ROOT / "MANIFEST.in").read_text()
    assert "demo is its own" in manifest and "prune demo" in manifest
