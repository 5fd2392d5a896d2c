"""tracectx: trace ids and error metadata that survive every hop, and the paths errors take.

The public API is re-exported here; submodules hold the details.
"""

from tracectx.breaker import BreakerState, CircuitBreaker, CircuitOpenError
from tracectx.classify import (
    classify,
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

__version__ = "0.1.0"

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
    "to_dict",
    "traced",
    "unbind",
    "unregister_exception",
    "unregister_predicate",
    "wrap_executor",
]
