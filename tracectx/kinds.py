"""Error kinds and their policies: what an error means and how the system answers it.

The four base kinds (TRANSIENT, BUSINESS, FATAL, UNKNOWN) are fixed; applications add their own
with `register_kind`, each inheriting the policy of a base kind unless overridden. All registry
state lives here and is restored by `reset_kinds()` (tests call it between cases).
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import os
import signal
import threading
from collections.abc import Callable
from typing import Any, ClassVar

__all__ = [
    "Alerting",
    "ErrorKind",
    "FatalHook",
    "KindError",
    "KindPolicy",
    "begin_graceful_shutdown",
    "get_kind",
    "kinds",
    "log_fatal",
    "policy_for",
    "register_kind",
    "reset_kinds",
    "set_fatal_hook",
    "set_policy",
]

_log = logging.getLogger("tracectx")


class KindError(ValueError):
    """A kind could not be registered or found (clashing name or code, unknown base)."""


class Alerting(enum.StrEnum):
    """When errors of a kind raise an alert."""

    NEVER = "never"
    BY_RULE = "by_rule"
    IMMEDIATE = "immediate"
    ALWAYS = "always"


@dataclasses.dataclass(frozen=True, slots=True)
class KindPolicy:
    """How the system answers an error of one kind.

    Args:
        http_status: status an HTTP edge answers with.
        log_level: stdlib logging level the error is logged at.
        alerting: when the error raises an alert.
        retryable: whether retry helpers may try again.
        expose_detail: whether the message may be shown to an HTTP client.
        retry_after: seconds suggested to clients (``Retry-After``) when retryable.
        record_stack: whether spans get the formatted stack trace of the error. Formatting it
            is most of what recording an error costs (bench_unwind), and expected errors
            (TRANSIENT, BUSINESS) rarely need it; FATAL and UNKNOWN always carry it.
    """

    http_status: int
    log_level: int
    alerting: Alerting
    retryable: bool = False
    expose_detail: bool = False
    retry_after: int | None = None
    record_stack: bool = True


@dataclasses.dataclass(frozen=True, slots=True)
class ErrorKind:
    """A class of errors. Compare by identity of name; base kinds are class attributes.

    A custom kind names its *base* (one of the four base kinds) and inherits its policy.
    """

    name: str
    code: int
    domain: str = "core"
    base_name: str | None = None

    TRANSIENT: ClassVar[ErrorKind]
    BUSINESS: ClassVar[ErrorKind]
    FATAL: ClassVar[ErrorKind]
    UNKNOWN: ClassVar[ErrorKind]

    @property
    def base(self) -> ErrorKind:
        """The base kind this kind inherits its policy from (itself for base kinds)."""
        return self if self.base_name is None else get_kind(self.base_name)

    @property
    def policy(self) -> KindPolicy:
        return policy_for(self)

    def is_a(self, other: ErrorKind) -> bool:
        """True if this kind is `other` or a custom kind built on it."""
        return self.name == other.name or self.base.name == other.name

    def __str__(self) -> str:
        return self.name


ErrorKind.TRANSIENT = ErrorKind("TRANSIENT", 1)
ErrorKind.BUSINESS = ErrorKind("BUSINESS", 2)
ErrorKind.FATAL = ErrorKind("FATAL", 3)
ErrorKind.UNKNOWN = ErrorKind("UNKNOWN", 0)

_BASE_KINDS = (ErrorKind.TRANSIENT, ErrorKind.BUSINESS, ErrorKind.FATAL, ErrorKind.UNKNOWN)

_DEFAULT_POLICIES: dict[str, KindPolicy] = {
    "TRANSIENT": KindPolicy(
        503,
        logging.WARNING,
        Alerting.NEVER,
        retryable=True,
        expose_detail=True,
        retry_after=1,
        record_stack=False,
    ),
    "BUSINESS": KindPolicy(
        400, logging.ERROR, Alerting.BY_RULE, expose_detail=True, record_stack=False
    ),
    "FATAL": KindPolicy(500, logging.CRITICAL, Alerting.IMMEDIATE),
    "UNKNOWN": KindPolicy(500, logging.ERROR, Alerting.ALWAYS),
}

FatalHook = Callable[[BaseException, ErrorKind], None]

_lock = threading.Lock()
_kinds_by_name: dict[str, ErrorKind] = {}
_kinds_by_code: dict[int, ErrorKind] = {}
_policies: dict[str, KindPolicy] = {}
_fatal_hooks: list[FatalHook] = []


def register_kind(
    name: str, code: int, *, base: ErrorKind, domain: str = "app", **policy: Any
) -> ErrorKind:
    """Register a custom kind, e.g. ``register_kind("AUTH", 4001, base=ErrorKind.BUSINESS)``.

    Policy keywords (``http_status=401`` …) override what the base kind gives.
    Raises `KindError` when the name or code is taken, or `base` is not a base kind.
    """
    name = name.strip().upper()
    if not name.isidentifier():
        raise KindError(f"kind name {name!r} must be an identifier")
    if base.base_name is not None or base.name not in _DEFAULT_POLICIES:
        raise KindError(f"base of {name} must be one of the four base kinds, not {base.name}")
    kind = ErrorKind(name, code, domain, base.name)
    with _lock:
        if name in _kinds_by_name:
            raise KindError(f"kind name {name!r} is already registered")
        if code in _kinds_by_code:
            raise KindError(f"kind code {code} is already used by {_kinds_by_code[code].name}")
        _kinds_by_name[name] = kind
        _kinds_by_code[code] = kind
    if policy:
        set_policy(kind, **policy)
    return kind


def get_kind(name_or_code: str | int) -> ErrorKind:
    """Look a kind up by name (case-insensitive) or numeric code; `KindError` if unknown."""
    with _lock:
        if isinstance(name_or_code, int):
            found = _kinds_by_code.get(name_or_code)
        else:
            found = _kinds_by_name.get(name_or_code.strip().upper())
    if found is None:
        raise KindError(f"unknown error kind {name_or_code!r}")
    return found


def kinds() -> list[ErrorKind]:
    """Every registered kind, base kinds first."""
    with _lock:
        return list(_kinds_by_name.values())


def policy_for(kind: ErrorKind) -> KindPolicy:
    """The effective policy of a kind: its own override, else its base kind's.

    Read without the lock: writers only ever replace whole entries, and a dict lookup is
    atomic, so a reader sees the old policy or the new one, never a mix.
    """
    own = _policies.get(kind.name)
    if own is not None:
        return own
    return _policies[kind.base_name or kind.name]


def set_policy(kind: ErrorKind, **changes: Any) -> KindPolicy:
    """Override fields of a kind's policy: ``set_policy(ErrorKind.TRANSIENT, retry_after=5)``."""
    current = policy_for(kind)
    try:
        updated = dataclasses.replace(current, **changes)
    except TypeError as exc:
        raise KindError(f"bad policy field for {kind.name}: {exc}") from None
    if isinstance(updated.alerting, str):
        object.__setattr__(updated, "alerting", Alerting(updated.alerting))
    with _lock:
        _policies[kind.name] = updated
    return updated


def log_fatal(error: BaseException, kind: ErrorKind) -> None:
    """Default FATAL hook: log at CRITICAL (alert rules pick FATAL errors up from spans)."""
    _log.critical("fatal error: %s", error, exc_info=error)


def begin_graceful_shutdown(error: BaseException, kind: ErrorKind) -> None:
    """Opt-in FATAL hook: send SIGTERM to this process so its own shutdown handlers run."""
    log_fatal(error, kind)
    os.kill(os.getpid(), signal.SIGTERM)


def set_fatal_hook(*hooks: FatalHook) -> None:
    """Replace the hooks run once per FATAL error when it is first recorded."""
    with _lock:
        _fatal_hooks[:] = hooks


def run_fatal_hooks(error: BaseException, kind: ErrorKind) -> None:
    """Run the FATAL hooks; a failing hook is logged, never raised into the application."""
    with _lock:
        hooks = list(_fatal_hooks)
    for hook in hooks:
        try:
            hook(error, kind)
        except Exception:
            _log.exception("tracectx: fatal hook %r failed", hook)


def reset_kinds() -> None:
    """Forget custom kinds, policy overrides and hooks: back to the defaults."""
    with _lock:
        _kinds_by_name.clear()
        _kinds_by_code.clear()
        for name in [n for n in _policies if n not in _DEFAULT_POLICIES]:
            del _policies[name]  # never clear(): `policy_for` reads without the lock
        _policies.update(_DEFAULT_POLICIES)
        for kind in _BASE_KINDS:
            _kinds_by_name[kind.name] = kind
            _kinds_by_code[kind.code] = kind
        _fatal_hooks[:] = [log_fatal]


reset_kinds()
