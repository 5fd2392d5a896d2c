"""Buffered spans get out: on SIGTERM (opt-in, chained) and when fork pool workers exit.

Real processes with a real BatchSpanProcessor that would hold the spans for a minute, exporting
OTLP JSON lines to a file.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tracectx.shutdown import flush_on_sigterm, flush_providers, remove_flush_on_sigterm

ROOT = Path(__file__).resolve().parents[2]


def _python(code: str, *args: str) -> list[str]:
    return [sys.executable, "-c", code, *args]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def exported_names(path: Path) -> list[str]:
    if not path.exists():
        return []
    names = []
    for line in path.read_text().splitlines():
        for resource in json.loads(line)["resourceSpans"]:
            for scope in resource["scopeSpans"]:
                names += [span["name"] for span in scope["spans"]]
    return names


def run_until_sigterm(path: Path, mode: str) -> int:
    code = "import sys; from tests.unit.procwork import sigterm_app; sigterm_app(*sys.argv[1:])"
    proc = subprocess.Popen(
        _python(code, str(path), mode),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
        cwd=ROOT,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "ready\n", proc.stderr.read() if proc.stderr else ""
        proc.send_signal(signal.SIGTERM)
        return proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


class TestFlushOnSigterm:
    def test_without_it_pending_spans_are_lost(self, tmp_path):
        """The problem, measured: SIGTERM's default action drops the batch queue."""
        out = tmp_path / "spans.jsonl"
        assert run_until_sigterm(out, "none") == -signal.SIGTERM
        assert exported_names(out) == []

    def test_pending_spans_are_flushed_and_sigterm_still_terminates(self, tmp_path):
        out = tmp_path / "spans.jsonl"
        assert run_until_sigterm(out, "flush") == -signal.SIGTERM
        assert sorted(exported_names(out)) == sorted(f"pending {i}" for i in range(50))

    def test_chains_to_the_applications_handler_once_even_if_called_twice(self, tmp_path):
        out = tmp_path / "spans.jsonl"
        assert run_until_sigterm(out, "chain,flush,twice") == 3  # the app's handler decided
        assert len(exported_names(out)) == 50
        assert Path(f"{out}.app").read_text() == f"stopped by {int(signal.SIGTERM)}\n"

    def test_undo_gives_the_application_its_handler_back(self, tmp_path):
        out = tmp_path / "spans.jsonl"
        assert run_until_sigterm(out, "chain,flush,undo") == 3
        assert exported_names(out) == []  # no flush any more: the app's hard exit loses them
        assert Path(f"{out}.app").exists()

    def test_install_and_remove_in_process(self):
        before = signal.getsignal(signal.SIGTERM)
        try:
            flush_on_sigterm()
            ours = signal.getsignal(signal.SIGTERM)
            flush_on_sigterm()
            assert signal.getsignal(signal.SIGTERM) is ours and ours is not before
            assert remove_flush_on_sigterm() is True
            assert signal.getsignal(signal.SIGTERM) == before
            assert remove_flush_on_sigterm() is False
        finally:
            signal.signal(signal.SIGTERM, before)

    def test_flush_providers_flushes_the_global_sdk_provider(self, spans):
        assert flush_providers() is True


@pytest.mark.timeout(120)
def test_fork_pool_workers_export_their_spans_before_exiting(tmp_path):
    """Fork workers end with os._exit (no atexit): without the exit flush 0/10 work spans and
    0/5 failure spans reached the exporter."""
    out = tmp_path / "spans.jsonl"
    code = "import sys; from tests.unit.procwork import fork_pool_app; fork_pool_app(sys.argv[1])"
    done = subprocess.run(
        _python(code, str(out)), capture_output=True, text=True, env=_env(), cwd=ROOT, timeout=90
    )
    assert done.returncode == 0, done.stderr[-2000:]
    names = exported_names(out)
    assert names.count("work") == 10
    assert names.count("fail_plain") == 5
    assert names.count("request") == 1
