"""Mask sensitive metadata before it leaves the process (spans, envelopes, logs, alerts)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tracectx.config import settings

__all__ = ["is_sensitive", "redact"]


def _normalise(key: str) -> str:
    return key.lower().replace("-", "").replace("_", "")


def is_sensitive(key: str) -> bool:
    """True if `key` looks like it holds a secret (``password``, ``X-Auth-Token`` …)."""
    norm = _normalise(key)
    return any(_normalise(marker) in norm for marker in settings().redact_keys)


def redact(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of `metadata` with sensitive values masked; nested mappings are redacted too."""
    mask = settings().redact_mask
    out: dict[str, Any] = {}
    for key, value in metadata.items():
        if is_sensitive(str(key)):
            out[key] = mask
        elif isinstance(value, Mapping):
            out[key] = redact(value)
        else:
            out[key] = value
    return out
