"""The real exception behind Celery's and billiard's wrappers.

Celery replaces an unpicklable exception by `UnpickleableExceptionWrapper` before the failure
signal and the result backend see it, and billiard wraps pool errors in `ExceptionWithTraceback`.
Failure handling runs inside the ``except`` block that caught the original, so the live
exception is recovered from ``sys.exc_info()``; failing that, the wrapper reports the original
class name (``error.type``) through ``remote_type``.
"""

from __future__ import annotations

import sys

from billiard.einfo import ExceptionWithTraceback
from celery.utils.serialization import UnpickleableExceptionWrapper

__all__ = ["real_exception"]


def real_exception(exc: BaseException) -> BaseException:
    """`exc` with wrappers removed; the original object when it is still in flight."""
    if isinstance(exc, ExceptionWithTraceback):
        exc = exc.exc
    if isinstance(exc, UnpickleableExceptionWrapper):
        live = sys.exc_info()[1]
        if live is not None and type(live).__name__ == exc.exc_cls_name:
            return live
        exc.remote_type = f"{exc.exc_module}.{exc.exc_cls_name}"
    return exc
