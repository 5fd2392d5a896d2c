"""Errors come back to the caller with their identity.

With the JSON serializer Celery stores a failure as ``{exc_type, exc_message, exc_module}`` and
rebuilds it from type and args: kind, code, metadata and error id are lost. tracectx adds the
error envelope to that dict in the worker (``"tracectx"`` key; pickled exceptions carry it as
an attribute) and `tracectx.envelope.adopt`s it onto the rebuilt exception in the caller, which
also reports the original class when Celery could only build a stand-in. Before the envelope is
written the error is recorded on the run span, so its origin is that span.

The result backend is input from outside: an envelope nested deeper than `MAX_ENVELOPE_DEPTH`,
larger than `MAX_ENVELOPE_NODES`, or failing to read in any way is refused (counted as
``corrupt_envelope``) and the caller gets Celery's own rebuilt exception, never a crash.
"""

from __future__ import annotations

import logging
from typing import Any

from celery.backends.base import Backend

from tracectx.envelope import EnvelopeError, adopt, to_dict
from tracectx.errors import type_name
from tracectx.metrics import note_rejected
from tracectx.patching import Patches
from tracectx_celery.run import current_run, record_task_error
from tracectx_celery.unwrap import real_exception

__all__ = [
    "ENVELOPE_KEY",
    "MAX_ENVELOPE_DEPTH",
    "MAX_ENVELOPE_NODES",
    "envelope_shape_error",
    "patch_backend",
    "unpatch_backend",
]

ENVELOPE_KEY = "tracectx"
#: Nesting an envelope may have (ours is 2-3 deep; metadata values a few more).
MAX_ENVELOPE_DEPTH = 32
#: Containers plus values an envelope may hold.
MAX_ENVELOPE_NODES = 10_000
_ATTR = "_tracectx_envelope"
_log = logging.getLogger("tracectx")
_patches = Patches()


def _exception_arg(exc: Any = None, *_: Any, **__: Any) -> Any:
    return exc


def _prepare_exception(
    wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """``Backend.prepare_exception``: record the failure on the run span, add the envelope."""
    prepared = wrapped(*args, **kwargs)
    exc = _exception_arg(*args, **kwargs)
    if not isinstance(exc, BaseException):
        return prepared
    try:
        real = real_exception(exc)
        run = current_run()
        if run is not None:
            record_task_error(run, real)
        envelope = to_dict(real)
        if isinstance(prepared, dict):
            prepared[ENVELOPE_KEY] = envelope
        elif isinstance(prepared, BaseException):
            setattr(prepared, _ATTR, envelope)
    except Exception:  # never fail the task's result write because of tracectx
        _log.warning("tracectx: could not attach the error envelope", exc_info=True)
    return prepared


def envelope_shape_error(envelope: Any) -> str | None:
    """Why `envelope` is too deep or too large to read (short code text), or None if it is
    not. Walks iteratively, so any nesting is measured without recursion."""
    stack: list[tuple[Any, int]] = [(envelope, 0)]
    nodes = 0
    while stack:
        value, depth = stack.pop()
        nodes += 1
        if nodes > MAX_ENVELOPE_NODES:
            return f"more than {MAX_ENVELOPE_NODES} values"
        if isinstance(value, dict | list | tuple):
            if depth >= MAX_ENVELOPE_DEPTH:
                return f"nested deeper than {MAX_ENVELOPE_DEPTH}"
            children = value.values() if isinstance(value, dict) else value
            stack.extend((child, depth + 1) for child in children)
    return None


def _adopt(rebuilt: BaseException, envelope: Any) -> None:
    """Give `rebuilt` the envelope's identity, or count the envelope as corrupt."""
    problem = envelope_shape_error(envelope)
    if problem is not None:
        note_rejected("celery", "corrupt_envelope", problem)
        return
    try:
        adopt(rebuilt, envelope)
        original_type = envelope.get("type")
        if isinstance(original_type, str) and original_type != type_name(rebuilt):
            rebuilt.remote_type = original_type[:256]  # type: ignore[attr-defined]
    except EnvelopeError:
        note_rejected("celery", "corrupt_envelope", "not an envelope")
    except Exception as err:  # anything else (RecursionError…): the caller gets Celery's own
        note_rejected("celery", "corrupt_envelope", type(err).__name__)


def _exception_to_python(
    wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """``Backend.exception_to_python``: give the rebuilt exception the envelope's identity."""
    exc = _exception_arg(*args, **kwargs)
    envelope = None
    if isinstance(exc, dict):
        envelope = exc.get(ENVELOPE_KEY)
    elif isinstance(exc, BaseException):
        envelope = getattr(exc, _ATTR, None)
    rebuilt = wrapped(*args, **kwargs)
    if envelope is not None and isinstance(rebuilt, BaseException):
        _adopt(rebuilt, envelope)
    return rebuilt


def patch_backend() -> None:
    """Wrap the two hooks on Celery's `Backend` base (every result backend inherits it); the
    wrapped methods keep their ``__doc__``, signature and ``__wrapped__``. Idempotent."""
    if _patches:
        return
    _patches.wrap(Backend, "prepare_exception", _prepare_exception)
    _patches.wrap(Backend, "exception_to_python", _exception_to_python)


def unpatch_backend() -> None:
    """Undo `patch_backend`: the original functions are back in ``Backend.__dict__``."""
    _patches.undo()
