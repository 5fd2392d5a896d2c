"""Process-wide settings in one place, with `reset_defaults()` for tests.

Read by redaction, baggage bounds and span recording; set by `configure()`.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Iterable
from typing import Any

__all__ = ["DEFAULT_REDACT_KEYS", "Settings", "configure", "reset_defaults", "settings"]

#: Key words marking a key sensitive. A key is split into words (``X-Auth-Token`` → x, auth,
#: token; ``cardNumber`` → card, number); it is sensitive if a word, or two or three adjacent
#: words run together (``api_key`` → apikey), is listed here. Words, not substrings: so
#: ``business_name`` and ``classname`` are not caught by ``ssn``.
DEFAULT_REDACT_KEYS: tuple[str, ...] = (
    "password",
    "passwd",
    "pwd",
    "passphrase",
    "pin",
    "secret",
    "token",
    "authorization",
    "auth",
    "bearer",
    "apikey",
    "cookie",
    "session",
    "sessionid",
    "card",
    "cardnumber",
    "cvv",
    "cvc",
    "iban",
    "ssn",
    "privatekey",
    "credential",
    "credentials",
    "creds",
    "signature",
    "jwt",
    "otp",
)


@dataclasses.dataclass(frozen=True, slots=True)
class Settings:
    """Everything tracectx reads at run time.

    Args:
        redact_keys: key words marking a key sensitive (see `DEFAULT_REDACT_KEYS`).
        redact_mask: what a sensitive value is replaced with.
        propagate_keys: bound keys (``fnmatch`` globs) written to outgoing W3C baggage, so
            other processes can see them; sensitive keys never are. Default: none.
        baggage_allowlist: inbound baggage keys (``fnmatch`` globs) this service trusts as
            metadata. Default: none — an upstream's baggage is never metadata by itself.
        max_bound_keys: most metadata keys bound in one context.
        max_value_length: longest metadata value carried (longer values are cut).
        service_name: service reported in error origins when the span has no resource.
    """

    redact_keys: tuple[str, ...] = DEFAULT_REDACT_KEYS
    redact_mask: str = "[REDACTED]"
    propagate_keys: tuple[str, ...] = ()
    baggage_allowlist: tuple[str, ...] = ()
    max_bound_keys: int = 64
    max_value_length: int = 256
    service_name: str | None = None


_lock = threading.Lock()
_current = Settings()


def settings() -> Settings:
    """The settings in force."""
    return _current


def configure(**changes: Any) -> Settings:
    """Change settings, e.g. ``configure(baggage_allowlist=["tenant_*"])``; returns the new ones."""
    global _current
    for key in ("redact_keys", "propagate_keys", "baggage_allowlist"):
        if key in changes:
            value = changes[key]
            if isinstance(value, str) or not isinstance(value, Iterable):
                raise TypeError(f"{key} must be a list of strings, not {type(value).__name__}")
            changes[key] = tuple(str(v) for v in value)
    with _lock:
        _current = dataclasses.replace(_current, **changes)
    return _current


def reset_defaults() -> None:
    """Back to the defaults, plus ``TRACECTX_PROPAGATE_KEYS`` and ``TRACECTX_BAGGAGE_ALLOWLIST``
    from the environment. Custom kinds stay registered (`tracectx.kinds` owns them)."""
    global _current
    with _lock:
        _current = Settings(
            propagate_keys=_env_list("TRACECTX_PROPAGATE_KEYS"),
            baggage_allowlist=_env_list("TRACECTX_BAGGAGE_ALLOWLIST"),
        )


def _env_list(name: str) -> tuple[str, ...]:
    return tuple(k.strip() for k in os.environ.get(name, "").split(",") if k.strip())


reset_defaults()
