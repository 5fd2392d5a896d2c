"""tracectx for Celery: one trace from ``delay()`` to the worker and back, errors included.

Either instrument (the ``tracectx_celery`` entry point makes ``opentelemetry-instrument`` do it)::

    from tracectx_celery import instrument
    instrument(app, retry_transient=True)    # or CeleryInstrumentor().instrument()

or connect the handlers yourself (and patch the result backend for error identity)::

    from celery import signals
    import tracectx_celery as tc
    signals.before_task_publish.connect(tc.on_before_publish, weak=False)
    signals.after_task_publish.connect(tc.on_after_publish, weak=False)
    signals.task_prerun.connect(tc.on_prerun, weak=False)
    signals.task_postrun.connect(tc.on_postrun, weak=False)
    signals.task_retry.connect(tc.on_retry, weak=False)
    signals.task_failure.connect(tc.on_task_failure, weak=False)
    tc.patch_backend()

What you get: PRODUCER/CONSUMER spans linked across the hop, attempts as sibling spans linked
in order, ``throws=`` errors kept off the error status, the real exception class behind
Celery's wrappers, lost work (unknown, rejected, revoked, time limit, worker lost) visible in
the trace, and `AsyncResult.get()` raising an exception with the worker's kind, code, metadata
and error id. Celery beat: each scheduled run is a trace of its own starting at a
``schedule <entry>`` span, and a run no worker started before the entry's next dispatch leaves
a ``missed <entry>`` span (see `tracectx_celery.beat`).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

try:
    from celery import signals
except ModuleNotFoundError as exc:  # pragma: no cover - exercised in a subprocess by the tests
    # ModuleNotFoundError (not ImportError): OTel's loader skips it quietly when Celery is absent
    raise ModuleNotFoundError(
        "tracectx_celery needs Celery 5.3+: pip install 'tracectx[celery]'", name=exc.name
    ) from exc

from celery.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded, WorkerLostError
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]

from tracectx import ErrorKind, register_exception
from tracectx.classify import unregister_exception
from tracectx_celery import lost, options, tracing
from tracectx_celery.autoretry import wrap_app
from tracectx_celery.beat import patch_beat, unpatch_beat
from tracectx_celery.options import Options
from tracectx_celery.package import _instruments
from tracectx_celery.publish import on_after_publish, on_before_publish
from tracectx_celery.results import patch_backend, unpatch_backend
from tracectx_celery.run import on_failure, on_postrun, on_prerun, on_retry

__all__ = [
    "OPTIONS",
    "CeleryInstrumentor",
    "Options",
    "instrument",
    "on_after_publish",
    "on_before_publish",
    "on_postrun",
    "on_prerun",
    "on_retry",
    "on_task_failure",
    "patch_backend",
    "uninstrument",
]


def on_task_failure(
    sender: Any = None, task_id: str | None = None, exception: Any = None, **_: Any
) -> None:
    """``task_failure``: on the run span if it is open here, else as lost work."""
    if not on_failure(sender=sender, task_id=task_id, exception=exception):
        lost.on_lost_failure(sender=sender, task_id=task_id, exception=exception)


def _flush(**_: Any) -> None:
    """Export buffered spans before a pool child (or the worker) exits."""
    flush = getattr(tracing.provider(), "force_flush", None)
    if flush is not None:
        flush(5000)


def _wrap_worker_app(sender: Any = None, **_: Any) -> None:
    app = getattr(sender, "app", None)
    if app is not None:
        wrap_app(app)


_SIGNALS = (
    (signals.before_task_publish, on_before_publish),
    (signals.after_task_publish, on_after_publish),
    (signals.task_prerun, on_prerun),
    (signals.task_postrun, on_postrun),
    (signals.task_retry, on_retry),
    (signals.task_failure, on_task_failure),
    (signals.task_received, lost.on_received),
    (signals.task_unknown, lost.on_unknown),
    (signals.task_rejected, lost.on_rejected),
    (signals.task_revoked, lost.on_revoked),
    (signals.worker_process_shutdown, _flush),
    (signals.worker_shutdown, _flush),
    (signals.worker_init, _wrap_worker_app),
)


#: Keyword arguments `instrument` accepts: the `Options` fields and ``tracer_provider``.
OPTIONS = frozenset({*Options.__dataclass_fields__, "tracer_provider"})
# Consumed by `BaseInstrumentor.instrument` itself (``opentelemetry-instrument`` passes them).
_BASE_OPTIONS = frozenset({"skip_dep_check", "raise_exception_on_conflict"})
# Celery's lost-work errors are TRANSIENT while instrumented (the work can be sent again).
_TRANSIENT_TYPES = (SoftTimeLimitExceeded, TimeLimitExceeded, WorkerLostError)


def _check_options(kwargs: Mapping[str, Any]) -> None:
    unknown = sorted(set(kwargs) - OPTIONS - _BASE_OPTIONS)
    if unknown:
        raise TypeError(
            f"tracectx_celery.instrument() got unknown option(s) "
            f"{', '.join(map(repr, unknown))}; accepted: {', '.join(sorted(OPTIONS))}"
        )


class CeleryInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Connect tracectx to Celery's signals and result backends; keyword args are `Options`
    fields and ``tracer_provider``; anything else is a `TypeError`."""

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def instrument(self, **kwargs: Any) -> Any:
        """Check the options first, so a misspelt one fails even when already instrumented."""
        _check_options(kwargs)
        return super().instrument(**kwargs)

    def _instrument(self, **kwargs: Any) -> None:
        _check_options(kwargs)
        fields = set(Options.__dataclass_fields__)
        options.set_options(Options(**{k: v for k, v in kwargs.items() if k in fields}))
        tracing.use_provider(kwargs.get("tracer_provider"))
        for kind_type in _TRANSIENT_TYPES:
            register_exception(kind_type, ErrorKind.TRANSIENT)
        for signal, handler in _SIGNALS:
            signal.connect(handler, weak=False, dispatch_uid=f"tracectx:{handler.__name__}")
        patch_backend()
        patch_beat()

    def _uninstrument(self, **kwargs: Any) -> None:
        for signal, handler in _SIGNALS:
            signal.disconnect(handler, dispatch_uid=f"tracectx:{handler.__name__}")
        unpatch_beat()
        unpatch_backend()
        for kind_type in _TRANSIENT_TYPES:  # unless the app has mapped them otherwise since
            unregister_exception(kind_type, ErrorKind.TRANSIENT)
        tracing.use_provider(None)
        options.set_options(Options())


def instrument(app: Any = None, **kwargs: Any) -> None:
    """Instrument Celery (idempotent); with `app`, also wrap its tasks for TRANSIENT retries.
    Keyword args: see `OPTIONS`; an unknown one is a `TypeError` naming it."""
    CeleryInstrumentor().instrument(**kwargs)
    if app is not None:
        wrap_app(app)


def uninstrument() -> None:
    """Undo `instrument` (task wrappers for retries stay: they only act on opted-in tasks)."""
    CeleryInstrumentor().uninstrument()
