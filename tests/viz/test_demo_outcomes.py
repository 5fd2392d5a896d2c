"""The demo's error paths as `tracectx graph --format json` prints them (issue 25's truths)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def demo_paths(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    out = tmp_path_factory.mktemp("demo")
    ran = subprocess.run(
        [sys.executable, "-m", "tracectx", "demo", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert ran.returncode == 0, ran.stderr[-3000:]
    graph = subprocess.run(
        [
            sys.executable,
            "-m",
            "tracectx",
            "graph",
            "--format",
            "json",
            str(Path(out) / "spans.otlp.jsonl"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert graph.returncode == 0, graph.stderr[-3000:]
    [trace] = json.loads(graph.stdout)["traces"]
    names = {s["span_id"]: s["name"] for s in trace["spans"]}
    return {err["code"]: {**err, "names": names} for err in trace["errors"]}


def test_the_celery_retry_that_recovered_is_absorbed_by_the_retry(demo_paths):
    """`run payments.capture` failed with E_GATEWAY, Celery ran it again and it succeeded."""
    err = demo_paths["E_GATEWAY"]
    assert (err["outcome"], err["escaped"]) == ("absorbed", False)
    assert err["names"][err["absorber"]] == "run payments.capture"
    assert err["absorber"] != err["origin"]  # the second run, not the failed one
    assert "recovered" in err["evidence"][-1]


def test_the_fatal_error_still_escapes_and_the_unjoined_task_is_unobserved(demo_paths):
    assert demo_paths["E_TEMPLATES"]["outcome"] == "escaped"
    assert demo_paths["unknown"]["outcome"] == "unobserved"
