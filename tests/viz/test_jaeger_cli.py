"""``tracectx graph`` on big inputs: progress on stderr when, and only when, stderr is a
terminal (a real pseudo-terminal here), never in piped output."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import threading

import pytest

from bench.bench_viz import generate

SPANS = 30_000  # ~8 MB of OTLP JSON: a few seconds of work, long enough to be shown


@pytest.fixture(scope="module")
def big_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("big") / "big spans.json"
    path.write_bytes(generate(SPANS))
    return path


def _graph(path, *, stderr_tty: bool) -> tuple[int, bytes, bytes]:
    cmd = [sys.executable, "-m", "tracectx.cli", "graph", str(path), "--format", "json"]
    env = {**os.environ, "COLUMNS": "100", "TERM": "xterm-256color"}
    if not stderr_tty:
        done = subprocess.run(cmd, capture_output=True, env=env, timeout=300)
        return done.returncode, done.stdout, done.stderr
    master, slave = pty.openpty()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=slave, env=env)
    os.close(slave)
    chunks: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    stdout, _ = proc.communicate(timeout=300)
    reader.join(timeout=10)
    os.close(master)
    return proc.returncode, stdout, b"".join(chunks)


def test_progress_on_a_terminal_and_clean_output(big_file):
    code, stdout, stderr = _graph(big_file, stderr_tty=True)
    assert code == 0
    assert b"big spans.json" in stderr  # the stage names the file being read or parsed
    assert b"parsing" in stderr or b"analysing" in stderr
    data = json.loads(stdout)  # stdout is only the document
    assert len(data["traces"]) == SPANS // 50


def test_no_progress_when_stderr_is_piped(big_file):
    code, stdout, stderr = _graph(big_file, stderr_tty=False)
    assert code == 0
    assert stderr == b""  # no progress text, no escape sequences
    assert b"\x1b" not in stdout
    json.loads(stdout)


def test_stages_are_silent_off_a_terminal(capsys):
    from tracectx.viz.progress import Stages

    with Stages() as stages:
        assert not stages.enabled
        stages.stage("reading \x1b]0;owned\x07 x.json", 100)
        stages.advance(50)
        stages.report("parsing", 0, None)
    assert capsys.readouterr().err == ""
