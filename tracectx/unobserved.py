"""Errors nobody looked at: log each once, with the trace it belongs to.

Fire-and-forget threads (``threading.excepthook``), tasks whose exception is never retrieved
(the loop's exception handler) and futures whose result is never read all end here. The error
has already been recorded on a span of the starter's trace; this adds the one log line.
"""

from __future__ import annotations

import logging

from tracectx.classify import classify
from tracectx.errors import error_id, get_origin, type_name

__all__ = ["report_unobserved"]

_log = logging.getLogger("tracectx.unobserved")
_LOGGED_ATTR = "_tracectx_logged"


def report_unobserved(exc: BaseException, where: str) -> bool:
    """Log `exc` once at its kind's level with trace and error ids; False if already logged."""
    if getattr(exc, _LOGGED_ATTR, False):
        return False
    try:
        setattr(exc, _LOGGED_ATTR, True)
    except (AttributeError, TypeError):
        pass
    kind = classify(exc)
    origin = get_origin(exc)
    _log.log(
        kind.policy.log_level,
        "unobserved error in %s: %s: %s (kind=%s error_id=%s trace_id=%s)",
        where,
        type_name(exc),
        exc,
        kind.name,
        error_id(exc),
        origin.trace_id if origin else "-",
        exc_info=(type(exc), exc, exc.__traceback__),
        extra={"error_id": error_id(exc), "trace_id": origin.trace_id if origin else "-"},
    )
    return True
