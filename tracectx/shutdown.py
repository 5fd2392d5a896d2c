"""Get buffered telemetry out before the process goes.

A ``BatchSpanProcessor`` holds spans for seconds; a process killed by SIGTERM's default action,
or ended with ``os._exit`` (forked pool workers), never runs the SDK's atexit shutdown, so those
spans are lost. `flush_providers` flushes the global tracer, meter and logger providers;
`flush_on_sigterm` (opt-in) does it when SIGTERM arrives and then lets SIGTERM do what it did
before: the handler installed earlier runs, or the default action (terminate) is re-delivered.
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType
from typing import Any

from opentelemetry import metrics, trace

__all__ = ["flush_on_sigterm", "flush_providers", "remove_flush_on_sigterm"]

_log = logging.getLogger("tracectx")
_lock = threading.Lock()
_installed: _SigtermFlush | None = None


def _global_providers() -> list[Any]:
    from opentelemetry._logs import get_logger_provider

    return [trace.get_tracer_provider(), metrics.get_meter_provider(), get_logger_provider()]


def flush_providers(timeout_millis: int = 5000) -> bool:
    """Force-flush every global provider that can (the no-op defaults can't); True if all
    flushes reported success."""
    ok = True
    for provider in _global_providers():
        flush = getattr(provider, "force_flush", None)
        if not callable(flush):
            continue
        try:
            ok = flush(timeout_millis=timeout_millis) is not False and ok
        except Exception:
            _log.debug("tracectx: flushing %r failed", provider, exc_info=True)
            ok = False
    return ok


def _flush_bounded(timeout: float) -> None:
    # On a helper thread: the signal may have interrupted this very thread inside an export
    # (holding the processor's or exporter's lock), and a handler must not wait for itself.
    worker = threading.Thread(
        target=flush_providers, args=(int(timeout * 1000),), name="tracectx-sigterm-flush"
    )
    worker.daemon = True
    worker.start()
    worker.join(timeout)


class _SigtermFlush:
    """The installed handler: flush, then hand SIGTERM to what was there before."""

    def __init__(self, previous: Any, timeout: float) -> None:
        self.previous = previous
        self.timeout = timeout
        self.active = True

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if self.active:
            _flush_bounded(self.timeout)
        previous = self.previous
        if callable(previous):
            previous(signum, frame)
        elif previous != signal.SIG_IGN:
            # SIG_DFL, or a handler not set from Python (which we cannot call): the default.
            signal.signal(signum, signal.SIG_DFL)
            signal.raise_signal(signum)


def flush_on_sigterm(timeout: float = 5.0) -> None:
    """On SIGTERM, flush telemetry (at most `timeout` seconds), then chain.

    The handler installed before keeps running after the flush; with none, SIGTERM still
    terminates the process. Calling again is a no-op while ours is installed. Only from the
    main thread (``signal.signal``'s rule). Undo with `remove_flush_on_sigterm`.
    """
    global _installed
    with _lock:
        current = signal.getsignal(signal.SIGTERM)
        if _installed is not None:
            if current is _installed:
                return
            _installed.active = False  # replaced since; if still chained to, flush once only
        handler = _SigtermFlush(current, timeout)
        signal.signal(signal.SIGTERM, handler)
        _installed = handler


def remove_flush_on_sigterm() -> bool:
    """Undo `flush_on_sigterm`: the previous handler comes back. A handler installed on top of
    ours since is left alone (ours, if it chains to it, only chains). True if there was one."""
    global _installed
    with _lock:
        handler = _installed
        _installed = None
        if handler is None:
            return False
        handler.active = False
        previous = handler.previous
        current: object = signal.getsignal(signal.SIGTERM)
        if current is handler:
            signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)
        return True
