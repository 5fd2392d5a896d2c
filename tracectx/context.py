"""Bound metadata: key/values that ride in OTel baggage across every hop.

``bind(account_id="acc_123")`` puts the pair in the current OTel context's baggage and lists the
key in the ``tracectx.bound`` baggage entry, so the far side of a hop knows which baggage entries
tracectx bound (trusted metadata) and which came from elsewhere (trusted only if allow-listed).
Like structlog's ``bind_contextvars`` it works as a plain call; used as a context manager it
restores the previous context on exit.
"""

from __future__ import annotations

import fnmatch
import logging
import re
from types import TracebackType
from typing import Any

from opentelemetry import baggage
from opentelemetry import context as otel_context
from opentelemetry.context import Context

from tracectx.config import settings

__all__ = [
    "BOUND_KEYS_ENTRY",
    "Binding",
    "bind",
    "bound",
    "get_bound",
    "sanitize_baggage",
    "unbind",
]

BOUND_KEYS_ENTRY = "tracectx.bound"
# W3C baggage limits (https://www.w3.org/TR/baggage/#limits): what we accept inbound.
MAX_BAGGAGE_ENTRIES = 180
MAX_BAGGAGE_BYTES = 8192
_KEY_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
_log = logging.getLogger("tracectx")


class Binding:
    """The result of `bind`: already in effect; as a context manager it undoes itself on exit."""

    __slots__ = ("_token",)

    def __init__(self, token: object) -> None:
        self._token = token

    def __enter__(self) -> Binding:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        otel_context.detach(self._token)  # type: ignore[arg-type]


def _bound_keys(ctx: Context | None) -> list[str]:
    raw = baggage.get_baggage(BOUND_KEYS_ENTRY, ctx)
    if not isinstance(raw, str) or not raw:
        return []
    return [k for k in raw.split(",") if k]


def _with_bound(values: dict[str, Any], ctx: Context | None = None) -> Context:
    cfg = settings()
    keys = _bound_keys(ctx)
    new_ctx = ctx if ctx is not None else otel_context.get_current()
    for key, value in values.items():
        if not _KEY_RE.match(key):
            raise ValueError(f"metadata key {key!r} must match {_KEY_RE.pattern}")
        text = str(value)[: cfg.max_value_length]
        new_ctx = baggage.set_baggage(key, text, new_ctx)
        if key not in keys:
            keys.append(key)
    if len(keys) > cfg.max_bound_keys:
        raise ValueError(f"at most {cfg.max_bound_keys} metadata keys can be bound")
    return baggage.set_baggage(BOUND_KEYS_ENTRY, ",".join(keys), new_ctx)


def bind(**values: Any) -> Binding:
    """Bind metadata for the rest of this context (or the ``with`` block); values become str."""
    return Binding(otel_context.attach(_with_bound(values)))


def bound(**values: Any) -> Binding:
    """Context-manager spelling of `bind`: ``with bound(order_id=7): ...``."""
    return bind(**values)


def unbind(*keys: str) -> Binding:
    """Remove bound keys from the current context."""
    ctx = otel_context.get_current()
    remaining = [k for k in _bound_keys(ctx) if k not in keys]
    for key in keys:
        ctx = baggage.remove_baggage(key, ctx)
    ctx = baggage.set_baggage(BOUND_KEYS_ENTRY, ",".join(remaining), ctx)
    return Binding(otel_context.attach(ctx))


def get_bound(ctx: Context | None = None) -> dict[str, str]:
    """Metadata bound in `ctx` (default: current): tracectx-bound keys plus allow-listed baggage."""
    entries = baggage.get_all(ctx)
    if not entries:
        return {}
    wanted = set(_bound_keys(ctx))
    allow = settings().baggage_allowlist
    out: dict[str, str] = {}
    for key, value in entries.items():
        if key == BOUND_KEYS_ENTRY:
            continue
        if key in wanted or (allow and any(fnmatch.fnmatchcase(key, g) for g in allow)):
            out[key] = str(value)
    return out


def sanitize_baggage(ctx: Context) -> Context:
    """Bound inbound baggage to the W3C limits and our own key/value rules.

    Called on every extract: entries past the limits, bad keys and oversized values are dropped
    (logged at DEBUG), the rest kept — a hostile header never fails the hop.
    """
    entries = baggage.get_all(ctx)
    if not entries:
        return ctx
    cfg = settings()
    kept: dict[str, str] = {}
    total = 0
    dropped = 0
    for key, value in entries.items():
        text = value if isinstance(value, str) else None
        size = len(key) + 1 + len(text or "")
        if (
            text is None
            or len(kept) >= MAX_BAGGAGE_ENTRIES
            or total + size > MAX_BAGGAGE_BYTES
            or (key != BOUND_KEYS_ENTRY and len(text) > cfg.max_value_length)
        ):
            dropped += 1
            continue
        kept[key] = text
        total += size
    bound_raw = kept.get(BOUND_KEYS_ENTRY)
    if bound_raw is not None:
        keys = [k for k in bound_raw.split(",") if _KEY_RE.match(k)][: cfg.max_bound_keys]
        kept[BOUND_KEYS_ENTRY] = ",".join(keys)
    if not dropped and len(kept) == len(entries) and kept == entries:
        return ctx
    if dropped:
        _log.debug("tracectx: dropped %d inbound baggage entries past limits", dropped)
    clean = baggage.clear(ctx)
    for key, text in kept.items():
        clean = baggage.set_baggage(key, text, clean)
    return clean
