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

DEFAULT_REDACT_KEYS: tuple[str, ...] = (
    "password",
    "passwd",
    "secret",
    "token",
    "authorization",
    "auth",
    "apikey",
    "api_key",
    "cookie",
    "session",
    "card",
    "cvv",
    "iban",
    "ssn",
    "private_key",
    "credential",
)


@dataclasses.dataclass(frozen=True, slots=True)
class Settings:
    """Everything tracectx reads at run time.

    Args:
        redact_keys: substrings (case-insensitive, ``-``/``_`` ignored) marking a key sensitive.
        redact_mask: what a sensitive value is replaced with.
        baggage_allowlist: inbound baggage keys (``fnmatch`` globs) trusted as metadata, on top
            of the keys tracectx itself bound upstream.
        max_bound_keys: most metadata keys carried in baggage.
        max_value_length: longest metadata value carried (longer values are cut).
        service_name: service reported in error origins when the span has no resource.
    """

    redact_keys: tuple[str, ...] = DEFAULT_REDACT_KEYS
    redact_mask: str = "[REDACTED]"
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
    for key in ("redact_keys", "baggage_allowlist"):
        if key in changes and isinstance(changes[key], Iterable):
            changes[key] = tuple(changes[key])
    with _lock:
        _current = dataclasses.replace(_current, **changes)
    return _current


def reset_defaults() -> None:
    """Back to the defaults (plus ``TRACECTX_BAGGAGE_ALLOWLIST`` from the environment)."""
    global _current
    env_allow = os.environ.get("TRACECTX_BAGGAGE_ALLOWLIST", "")
    with _lock:
        _current = Settings(
            baggage_allowlist=tuple(k.strip() for k in env_allow.split(",") if k.strip())
        )


reset_defaults()
