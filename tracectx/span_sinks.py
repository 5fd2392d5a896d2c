"""Where `tracectx.setup` sends spans: a spans file, OTLP, or both — one of each per process.

`ProcessSinks` is one span processor holding the exporters' processors. A forked child (a
Celery prefork child, a process-pool worker, ``multiprocessing.Process``) must not write into
its parent's file or share its parent's HTTP connections, so after ``fork``
(``os.register_at_fork``) the child builds its own exporters: a spans file named with its pid,
a fresh OTLP exporter. The batch processors stay: the SDK restarts their worker threads in the
child and drops the parent's queued spans (the parent exports them), so a fork adds no thread.
"""

from __future__ import annotations

import json
import logging
import multiprocessing.util
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
    SpanExportResult,
)

from tracectx.file_exporter import spans_to_otlp

__all__ = [
    "FileOnFirstSpan",
    "ProcessSinks",
    "SinkSpec",
    "child_path",
    "otlp_exporter",
    "spans_path",
    "watch_forks",
]

_log = logging.getLogger("tracectx.setup")


def spans_path(template: str, service: str, pid: int | None = None) -> Path:
    """The spans file for this process: ``{pid}`` and ``{service}`` in `template` filled in."""
    pid = os.getpid() if pid is None else pid
    return Path(template.replace("{pid}", str(pid)).replace("{service}", service))


def child_path(template: str, service: str, pid: int) -> Path:
    """A forked child's spans file: the template's own ``{pid}``, else ``-<pid>`` before the
    first dot of the name (``spans/api.otlp.jsonl`` -> ``spans/api-4242.otlp.jsonl``)."""
    if "{pid}" in template:
        return spans_path(template, service, pid)
    path = spans_path(template, service, pid)
    stem, dot, rest = path.name.partition(".")
    return path.with_name(f"{stem}-{pid}{dot}{rest}")


@dataclass(frozen=True)
class SinkSpec:
    """What to export to: a spans file template, an OTLP/HTTP traces URL, the console."""

    spans_file: str | None
    otlp_traces_url: str | None  # "" = the exporter's own default / OTEL_EXPORTER_OTLP_* vars
    console: bool
    service: str

    def exporters(self, path: Path | None) -> list[SpanExporter]:
        """Fresh exporters for one process, always in the same order; `path` is its spans file."""
        exporters: list[SpanExporter] = []
        if path is not None:
            exporters.append(FileOnFirstSpan(path))
        if self.otlp_traces_url is not None:
            exporters.append(otlp_exporter(self.otlp_traces_url or None))
        if self.console:
            exporters.append(ConsoleSpanExporter())
        return exporters


def otlp_exporter(url: str | None) -> SpanExporter:
    """The OTLP/HTTP span exporter (the ``otlp`` extra); `url` None: from the environment."""
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ModuleNotFoundError as exc:
        raise ModuleNotFoundError(
            "tracectx.setup: sending spans over OTLP needs the OTLP exporter: "
            "pip install 'tracectx[otlp]'",
            name=exc.name,
        ) from exc
    exporter: SpanExporter = OTLPSpanExporter(endpoint=url) if url else OTLPSpanExporter()
    return exporter


class FileOnFirstSpan(SpanExporter):
    """OTLP JSON lines appended to `path` (what `tracectx.file_exporter.OTLPJsonFileExporter`
    writes), with two differences, which is why it writes for itself: the file is opened at the
    first span, so a process that ends none (a pool worker never used) leaves no empty file for
    ``tracectx graph``; and each line is one ``write`` on an ``O_APPEND`` descriptor, so
    processes that share a file (``uvicorn --workers``, each calling `setup`) append whole
    lines, never interleaved ones."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._fd: int | None = None

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if not spans:
            return SpanExportResult.SUCCESS
        line = (json.dumps(spans_to_otlp(spans), separators=(",", ":")) + "\n").encode()
        with self._lock:
            if self._fd is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            view = memoryview(line)
            while view:  # a regular file takes it all at once; a short write only on errors
                view = view[os.write(self._fd, view) :]
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


class _Swappable(SpanExporter):
    """An exporter whose target a forked child replaces (`ProcessSinks.after_fork_in_child`)
    under the batch processor that feeds it."""

    def __init__(self, exporter: SpanExporter) -> None:
        self.exporter = exporter

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self.exporter.export(spans)

    def shutdown(self) -> None:
        self.exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.exporter.force_flush(timeout_millis)


class ProcessSinks(SpanProcessor):
    """tracectx's span processors for the current process; a forked child gets its own
    exporters. One per provider: a setup after a teardown restarts it (`start`), as the SDK
    cannot take a processor back out of a provider."""

    def __init__(self, spec: SinkSpec, *, path: Path | None) -> None:
        self._lock = threading.Lock()
        self.active = False
        self._inner: list[SpanProcessor] = []
        self._exporters: list[_Swappable] = []
        self.start(spec, path=path)

    def start(self, spec: SinkSpec, *, path: Path | None) -> None:
        """Export to `spec` from here on, with fresh exporters and processors (the ones before,
        if still running, are shut down first)."""
        self.shutdown()
        with self._lock:
            self.spec = spec
            self.path = path
            self.pid = os.getpid()
            self._exporters = [_Swappable(e) for e in spec.exporters(path)]
            self._inner = [BatchSpanProcessor(e) for e in self._exporters]
            self.active = True

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        return None  # the batch processors do nothing on start

    def on_end(self, span: ReadableSpan) -> None:
        if self.active:
            for processor in self._inner:
                processor.on_end(span)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        if not self.active:  # torn down: nothing held, and the provider's flush must not fail
            return True
        return all([p.force_flush(timeout_millis) for p in self._inner])

    def shutdown(self) -> None:
        with self._lock:
            if not self.active:
                return
            self.active = False
            for processor in self._inner:
                processor.shutdown()

    def after_fork_in_child(self) -> None:
        """In a forked child: its own file and exporters from here on. The batch processors are
        kept: the SDK's own fork hook has restarted their threads and dropped the parent's
        queued spans (the parent exports them); building new ones left those threads idle, one
        per processor per fork. The inherited exporters are dropped, not shut down: their file
        and connections are the parent's too."""
        if not self.active:
            return
        self.pid = os.getpid()
        template = self.spec.spans_file
        self.path = None if template is None else child_path(template, self.spec.service, self.pid)
        self._lock = threading.Lock()
        for holder, fresh in zip(self._exporters, self.spec.exporters(self.path), strict=True):
            holder.exporter = fresh


def _flush_current() -> None:
    sinks = _current()
    if sinks is None:
        return
    try:
        sinks.force_flush(5000)
    except Exception:
        _log.debug("tracectx: flushing spans at exit failed", exc_info=True)


class _MultiprocessingChild:
    """Keeps the ``register_after_fork`` entry alive (its registry holds values weakly)."""

    def __call__(self, _: object) -> None:
        # multiprocessing's children leave with os._exit (no atexit), after running the
        # finalizers registered since their bootstrap cleared the registry: flush there.
        multiprocessing.util.Finalize(None, _flush_current, exitpriority=100)


_mp_child = _MultiprocessingChild()


_fork_hook_installed = False
_current: Callable[[], ProcessSinks | None] = lambda: None  # noqa: E731


def watch_forks(current: Callable[[], ProcessSinks | None]) -> None:
    """After every fork, give the child its own sinks (`current()` returns the live ones).
    ``os.register_at_fork`` cannot be undone, so the hook is installed once and asks `current`."""
    global _fork_hook_installed, _current
    _current = current
    if not _fork_hook_installed:
        os.register_at_fork(after_in_child=_after_fork)
        multiprocessing.util.register_after_fork(_mp_child, _mp_child)
        _fork_hook_installed = True


def _after_fork() -> None:
    sinks = _current()
    if sinks is not None:
        sinks.after_fork_in_child()
