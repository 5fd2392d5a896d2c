"""tracectx: trace ids and error metadata that survive every hop, and the paths errors take.

The public API is re-exported here; submodules hold the details. The names are loaded on first
use (PEP 562 ``__getattr__``): ``import tracectx`` stays about as cheap as importing the OTel
SDK, and a service that never touches pools, retries or breakers never imports
``multiprocessing``, ``tenacity`` or structlog's dev renderer (which pulls rich).
``bench/bench_import.py`` measures it; a test keeps the heavy modules out of a bare import.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Eager, unlike the rest: ``tracectx.classify`` is also a submodule, and importing a submodule
# sets the package attribute of that name; had the function been loaded lazily, the first import
# of the submodule (by any tracectx module) would replace ``tracectx.classify`` with the module.
from tracectx.classify import classify
from tracectx.version import __version__ as __version__

if TYPE_CHECKING:  # the same names, eagerly, for type checkers and IDEs
    from tracectx.bootstrap import Setup, setup, teardown
    from tracectx.breaker import BreakerState, CircuitBreaker, CircuitOpenError
    from tracectx.classify import (
        is_kind,
        register_exception,
        register_predicate,
        unregister_exception,
        unregister_predicate,
    )
    from tracectx.config import configure, reset_defaults
    from tracectx.context import bind, bound, get_bound, unbind
    from tracectx.envelope import EnvelopeError, from_dict, to_dict
    from tracectx.errors import RemoteError, TracedError, error_id, new_error
    from tracectx.executors import (
        ContextProcessPoolExecutor,
        ContextThread,
        ContextThreadPoolExecutor,
        bind_context,
        wrap_executor,
    )
    from tracectx.kinds import (
        Alerting,
        ErrorKind,
        KindError,
        KindPolicy,
        get_kind,
        policy_for,
        register_kind,
        set_fatal_hook,
        set_policy,
    )
    from tracectx.propagation import capture, extract, inject, restore
    from tracectx.recording import handled, mark_handled, record_error, traced
    from tracectx.retry import retry_transient

#: Public name -> the submodule that defines it.
_LAZY: dict[str, str] = {
    **dict.fromkeys(("Setup", "setup", "teardown"), "bootstrap"),
    **dict.fromkeys(("BreakerState", "CircuitBreaker", "CircuitOpenError"), "breaker"),
    **dict.fromkeys(
        (
            "is_kind",
            "register_exception",
            "register_predicate",
            "unregister_exception",
            "unregister_predicate",
        ),
        "classify",
    ),
    **dict.fromkeys(("configure", "reset_defaults"), "config"),
    **dict.fromkeys(("bind", "bound", "get_bound", "unbind"), "context"),
    **dict.fromkeys(("EnvelopeError", "from_dict", "to_dict"), "envelope"),
    **dict.fromkeys(("RemoteError", "TracedError", "error_id", "new_error"), "errors"),
    **dict.fromkeys(
        (
            "ContextProcessPoolExecutor",
            "ContextThread",
            "ContextThreadPoolExecutor",
            "bind_context",
            "wrap_executor",
        ),
        "executors",
    ),
    **dict.fromkeys(
        (
            "Alerting",
            "ErrorKind",
            "KindError",
            "KindPolicy",
            "get_kind",
            "policy_for",
            "register_kind",
            "set_fatal_hook",
            "set_policy",
        ),
        "kinds",
    ),
    **dict.fromkeys(("capture", "extract", "inject", "restore"), "propagation"),
    **dict.fromkeys(("handled", "mark_handled", "record_error", "traced"), "recording"),
    "retry_transient": "retry",
}


def __getattr__(name: str) -> Any:
    """Load a public name from its submodule on first use, then keep it here."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tracectx' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"tracectx.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = [
    "Alerting",
    "BreakerState",
    "CircuitBreaker",
    "CircuitOpenError",
    "ContextProcessPoolExecutor",
    "ContextThread",
    "ContextThreadPoolExecutor",
    "EnvelopeError",
    "ErrorKind",
    "KindError",
    "KindPolicy",
    "RemoteError",
    "Setup",
    "TracedError",
    "bind",
    "bind_context",
    "bound",
    "capture",
    "classify",
    "configure",
    "error_id",
    "extract",
    "from_dict",
    "get_bound",
    "get_kind",
    "handled",
    "inject",
    "is_kind",
    "mark_handled",
    "new_error",
    "policy_for",
    "record_error",
    "register_exception",
    "register_kind",
    "register_predicate",
    "reset_defaults",
    "restore",
    "retry_transient",
    "set_fatal_hook",
    "set_policy",
    "setup",
    "teardown",
    "to_dict",
    "traced",
    "unbind",
    "unregister_exception",
    "unregister_predicate",
    "wrap_executor",
]
