"""Bound metadata: key/values that follow the work in-process, and travel only when chosen.

``bind(account_id="acc_123")`` stores the pair under tracectx's own key in the current OTel
context, so every in-process hop that copies the context (threads, tasks, executors) carries it,
and nothing else sees it. Crossing a process goes through the W3C ``baggage`` header, which
every OTel-instrumented client sends to whoever it calls — so a bound key is written to baggage
only if it is listed in ``configure(propagate_keys=[...])`` and is not sensitive
(`tracectx.redaction.is_sensitive`). Inbound, baggage becomes metadata only for keys the
receiving service trusts (``configure(baggage_allowlist=[...])``): what an upstream sends is
never trusted because of what it says about itself.

Like structlog's ``bind_contextvars`` `bind` works as a plain call; used as a context manager
it restores the previous context on exit.
"""

from __future__ import annotations

import contextvars
import fnmatch
import functools
import logging
import re
from collections.abc import Mapping
from types import MappingProxyType, TracebackType
from typing import Any

from opentelemetry import baggage
from opentelemetry import context as otel_context
from opentelemetry.context import Context
from opentelemetry.context.contextvars_context import ContextVarsRuntimeContext

from tracectx.config import settings
from tracectx.redaction import is_sensitive, redact_value

__all__ = [
    "runtime_context_var",
    "BOUND_KEYS_ENTRY",
    "Binding",
    "bind",
    "bound",
    "get_bound",
    "local_bound",
    "propagated_keys",
    "sanitize_baggage",
    "unbind",
]

#: Baggage entry that tracectx < 0.2 wrote to list its keys. Inbound it is dropped: a header
#: anyone can write must not decide what is trusted.
BOUND_KEYS_ENTRY = "tracectx.bound"
# W3C baggage limits (https://www.w3.org/TR/baggage/#limits): what we accept inbound.
MAX_BAGGAGE_ENTRIES = 180
MAX_BAGGAGE_BYTES = 8192
MAX_NESTING = 8
_KEY_RE = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
_BOUND_KEY = otel_context.create_key("tracectx.bound-metadata")
_EMPTY: Mapping[str, Any] = MappingProxyType({})
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


def _normalise(value: Any, limit: int, depth: int = 0) -> Any:
    """A bound value as stored: scalars as ``str`` (cut), mappings and sequences walked (so
    redaction can see nested keys), nesting bounded."""
    if depth >= MAX_NESTING:
        return "…"
    if isinstance(value, Mapping):
        return {str(k)[:64]: _normalise(v, limit, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_normalise(v, limit, depth + 1) for v in value]
    text = str(value)
    # A cut may end in whitespace the value did not end with: dropped, as baggage would drop it.
    return text if len(text) <= limit else text[:limit].rstrip()


def local_bound(ctx: Context | None = None) -> Mapping[str, Any]:
    """What was bound in this process along `ctx` (default: current); read-only."""
    found = otel_context.get_value(_BOUND_KEY, ctx)
    return found if isinstance(found, Mapping) else _EMPTY


@functools.lru_cache(maxsize=1024)
def _matches(key: str, globs: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(key, g) for g in globs)


def propagated_keys(keys: Any) -> list[str]:
    """Those of `keys` that `bind` writes to baggage: listed in ``propagate_keys`` and not
    sensitive."""
    globs = settings().propagate_keys
    if not globs:
        return []
    return [k for k in keys if _matches(k, globs) and not is_sensitive(k)]


def _baggage_text(key: str, value: Any, original: Any = None) -> str:
    """What baggage carries for a propagated `value` (as stored: cut, see `_normalise`): the
    text the receiver's `get_bound` gets, exactly. A text baggage would change is refused
    (ValueError) rather than sent changed: W3C baggage readers (OTel's among them) strip
    leading and trailing whitespace (checked at the ends of the `original` value, before the
    cut), a lone surrogate cannot be encoded, and a value shaped like a credential would arrive
    masked."""
    redacted = redact_value(value)
    if not isinstance(value, str):
        return redacted if isinstance(redacted, str) else str(redacted)
    why = None
    if redacted != value:
        why = "looks like a credential, and would travel masked"
    elif value != value.strip() or (isinstance(original, str) and original != original.strip()):
        why = "starts or ends with whitespace, which baggage readers strip"
    else:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            why = "is not valid Unicode (a lone surrogate), which baggage cannot carry"
    if why is not None:
        raise ValueError(
            f"bound value of {key!r} {why}; {key!r} is propagated (propagate_keys), so it must "
            "arrive as bound: clean the value, or bind it under a key that is not propagated"
        )
    return value


def _with_bound(values: Mapping[str, Any], ctx: Context | None = None) -> Context:
    cfg = settings()
    base = ctx if ctx is not None else otel_context.get_current()
    merged = dict(local_bound(base))
    for key, value in values.items():
        if not isinstance(key, str) or not _KEY_RE.fullmatch(key):
            raise ValueError(f"metadata key {key!r} must match {_KEY_RE.pattern}")
        merged[key] = _normalise(value, cfg.max_value_length)
    if len(merged) > cfg.max_bound_keys:
        raise ValueError(f"at most {cfg.max_bound_keys} metadata keys can be bound")
    carried = [
        (k, _baggage_text(k, merged[k], values[k])[: cfg.max_value_length])
        for k in propagated_keys(values)
    ]
    new_ctx = otel_context.set_value(_BOUND_KEY, MappingProxyType(merged), base)
    for key, text in carried:
        new_ctx = baggage.set_baggage(key, text, new_ctx)
    return new_ctx


def bind(**values: Any) -> Binding:
    """Bind metadata for the rest of this context (or the ``with`` block).

    Scalars are stored as ``str`` (cut to ``max_value_length``); dicts and lists keep their
    shape so redaction sees nested keys. The values stay in this process unless the key is
    listed in ``configure(propagate_keys=...)``; a propagated text arrives exactly as bound, so
    one that baggage would change (leading or trailing whitespace, a lone surrogate, the shape
    of a credential) raises ValueError and nothing is bound.
    """
    return Binding(otel_context.attach(_with_bound(values)))


def bound(**values: Any) -> Binding:
    """`bind` spelled for ``with``: ``with bound(order_id=7): ...`` (both undo on exit)."""
    return bind(**values)


def unbind(*keys: str) -> Binding:
    """Remove bound keys (and their propagated baggage) from the current context."""
    ctx = otel_context.get_current()
    remaining = {k: v for k, v in local_bound(ctx).items() if k not in keys}
    ctx = otel_context.set_value(_BOUND_KEY, MappingProxyType(remaining), ctx)
    for key in propagated_keys(keys):
        ctx = baggage.remove_baggage(key, ctx)
    return Binding(otel_context.attach(ctx))


def get_bound(ctx: Context | None = None) -> dict[str, Any]:
    """Metadata in `ctx` (default: current): inbound baggage of trusted keys
    (``baggage_allowlist``), overlaid by what was bound in this process."""
    local = local_bound(ctx)
    allow = settings().baggage_allowlist
    if not allow:
        return dict(local)
    out: dict[str, Any] = {}
    for key, value in baggage.get_all(ctx).items():
        if isinstance(value, str) and _matches(key, allow) and not is_sensitive(key):
            out[key] = value
    out.update(local)
    return out


def sanitize_baggage(ctx: Context) -> tuple[Context, int]:
    """Bound inbound baggage to the W3C limits and our own key/value rules.

    Called on every extract: entries past the limits, bad keys, oversized values and the legacy
    ``tracectx.bound`` entry are dropped; the rest kept — a hostile header never fails the hop.
    So are entries whose key this service itself propagates (``propagate_keys``) but does not
    trust (``baggage_allowlist``): forwarded on, a client's ``account_id=acc_VICTIM`` sent to an
    edge would reach a downstream service that trusts ``account_id`` from its own upstream.
    Returns the clean context and how many entries were dropped.
    """
    entries = baggage.get_all(ctx)
    if not entries:
        return ctx, 0
    cfg = settings()
    kept: dict[str, str] = {}
    total = 0
    dropped = 0
    ours, trusted = cfg.propagate_keys, cfg.baggage_allowlist
    for key, value in entries.items():
        text = value if isinstance(value, str) else None
        size = len(key) + 1 + len(text or "")
        if (
            text is None
            or key == BOUND_KEYS_ENTRY
            or (ours and _matches(key, ours) and not (trusted and _matches(key, trusted)))
            or len(kept) >= MAX_BAGGAGE_ENTRIES
            or total + size > MAX_BAGGAGE_BYTES
            or len(text) > cfg.max_value_length
        ):
            dropped += 1
            continue
        kept[key] = text
        total += size
    if not dropped:
        return ctx, 0
    clean = baggage.clear(ctx)
    for key, text in kept.items():
        clean = baggage.set_baggage(key, text, clean)
    return clean, dropped


def runtime_context_var() -> contextvars.ContextVar[Context] | None:
    """The ContextVar behind OTel's current context when OTel runs its default (contextvars)
    runtime context, else None. Per-task and per-record hops set it directly: one ``set``
    instead of ``attach``'s call chain (callers fall back to ``attach`` on None)."""
    runtime = getattr(otel_context, "_RUNTIME_CONTEXT", None)
    var = getattr(runtime, "_current_context", None)
    if type(runtime) is ContextVarsRuntimeContext and isinstance(var, contextvars.ContextVar):
        return var
    return None
