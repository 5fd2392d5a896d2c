"""Carry the OTel context across process boundaries with the globally configured propagators.

`capture()` writes the current context (traceparent/tracestate, baggage — so bound metadata
too) into a plain ``dict[str, str]`` carrier; `extract()` reads one back, defensively: non-string
or non-UTF-8 values are dropped, baggage is bounded, and a malformed traceparent simply yields a
context without a parent. `restore()` attaches the result for a ``with`` block. Integrations pass
their own getter/setter for header lists (Kafka) or nested dicts (Celery).
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator, Mapping, MutableMapping
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import Getter, Setter

from tracectx.context import MAX_BAGGAGE_BYTES, sanitize_baggage
from tracectx.metrics import note_rejected

__all__ = [
    "Carrier",
    "capture",
    "extract",
    "extract_checked",
    "has_remote_parent",
    "inject",
    "restore",
]

Carrier = dict[str, str]
MAX_HEADER_VALUE = 8192
TRACEPARENT = "traceparent"
BAGGAGE = "baggage"
_log = logging.getLogger("tracectx")


class _TextGetter(Getter[Mapping[str, Any]]):
    """Reads str or UTF-8 bytes values; anything else is treated as absent."""

    def get(self, carrier: Mapping[str, Any], key: str) -> list[str] | None:
        value = carrier.get(key)
        if value is None:
            # Header names are case-insensitive on most transports.
            lowered = key.lower()
            value = next((v for k, v in carrier.items() if str(k).lower() == lowered), None)
        text = _as_text(value)
        return None if text is None else [text]

    def keys(self, carrier: Mapping[str, Any]) -> list[str]:
        return [str(k) for k in carrier]


def _as_text(value: Any) -> str | None:
    if isinstance(value, bytes | bytearray):
        try:
            value = bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            _log.debug("tracectx: dropped a non-UTF-8 propagation header")
            return None
    if isinstance(value, list | tuple) and value:
        value = value[0]
    if not isinstance(value, str) or len(value) > MAX_HEADER_VALUE:
        return None
    return value


_text_getter = _TextGetter()


def inject(
    carrier: MutableMapping[str, Any] | None = None,
    *,
    context: Context | None = None,
    setter: Setter[Any] | None = None,
) -> MutableMapping[str, Any]:
    """Write `context` (default: current) into `carrier` with the global propagator."""
    target: MutableMapping[str, Any] = {} if carrier is None else carrier
    if setter is None:
        propagate.inject(target, context=context)
    else:
        propagate.inject(target, context=context, setter=setter)
    return target


def capture(context: Context | None = None) -> Carrier:
    """The current context as a fresh ``dict[str, str]`` carrier, ready to pickle or send."""
    carrier: Carrier = {}
    propagate.inject(carrier, context=context)
    return carrier


def extract(
    carrier: Any,
    *,
    getter: Getter[Any] | None = None,
    context: Context | None = None,
    transport: str | None = None,
) -> Context:
    """A context from `carrier`; never raises. Hostile input gives a context with no parent.

    Args:
        carrier: a mapping (or what `getter` understands).
        getter: how to read the carrier; default reads str/bytes mappings.
        context: base context (default: a fresh empty one, so nothing stale leaks in).
        transport: label for `tracectx.metrics.note_rejected` (``http``, ``kafka``…) when a
            traceparent or baggage header is refused (the hop continues without it).
    """
    return extract_checked(carrier, getter=getter, context=context, transport=transport)[0]


def extract_checked(
    carrier: Any,
    *,
    getter: Getter[Any] | None = None,
    context: Context | None = None,
    transport: str | None = None,
) -> tuple[Context, bool]:
    """`extract`, also telling whether anything in `carrier` was refused here (a traceparent,
    baggage or entries of it, each counted by `tracectx.metrics.note_rejected`): a caller that
    caches results keeps only clean ones, so every refusal is counted every time."""
    base = context if context is not None else Context()
    if carrier is None:
        return base, False
    if getter is None:
        if not isinstance(carrier, Mapping):
            return base, False
        getter = _text_getter
    watched = _InboundWatch(getter, transport or "other")
    try:
        ctx = propagate.extract(carrier, context=base, getter=watched)
    except Exception:  # a propagator choking on hostile input must not break the hop
        _log.debug("tracectx: could not extract trace context; starting fresh", exc_info=True)
        ctx = base
        watched.refused = True
    ctx, dropped = sanitize_baggage(ctx)
    if dropped:
        note_rejected(watched.transport, "oversized_baggage", f"{dropped} entries")
    if watched.traceparent_seen and not has_remote_parent(ctx):
        note_rejected(watched.transport, "malformed_traceparent")
        watched.refused = True
    return ctx, watched.refused or bool(dropped)


# One W3C baggage list-member: key=value[;properties] (https://www.w3.org/TR/baggage/).
_BAGGAGE_MEMBER = re.compile(
    r"[ \t]*[!#$%&'*+\-.^_`|~0-9A-Za-z]+[ \t]*=[ \t]*[!#-+\--:<-\[\]-~]*[ \t]*(;[^,]*)?"
)


class _InboundWatch(Getter[Any]):
    """Passes reads through, remembering whether a traceparent was handed over (so a refused
    one is noticed without reading the carrier, and counting its problems, twice), and cleans
    the baggage header before OTel's propagator sees it: an oversized header is refused and
    malformed members dropped, counted once here — OTel would log each one in full."""

    def __init__(self, inner: Getter[Any], transport: str) -> None:
        self.inner = inner
        self.transport = transport
        self.traceparent_seen = False
        self.refused = False

    def get(self, carrier: Any, key: str) -> list[str] | None:
        value = self.inner.get(carrier, key)
        if not value:
            return value
        if key == TRACEPARENT:
            self.traceparent_seen = True
        elif key == BAGGAGE:
            return self._clean_baggage(value[0])
        return value

    def _clean_baggage(self, header: str) -> list[str] | None:
        if len(header) > MAX_BAGGAGE_BYTES or len(header.encode()) > MAX_BAGGAGE_BYTES:
            note_rejected(self.transport, "oversized_baggage", f"{len(header)} characters")
            self.refused = True
            return None
        members = header.split(",")
        good = [m for m in members if len(m) <= 4096 and _BAGGAGE_MEMBER.fullmatch(m)]
        if len(good) != len(members) and any(m.strip() for m in members):
            note_rejected(self.transport, "malformed_baggage", f"{len(members) - len(good)}")
            self.refused = True
        return [",".join(good)] if good else None

    def keys(self, carrier: Any) -> list[str]:
        return self.inner.keys(carrier)


def has_remote_parent(ctx: Context) -> bool:
    """True if `ctx` holds a valid span context (e.g. extracted from a good traceparent)."""
    return trace.get_current_span(ctx).get_span_context().is_valid


@contextlib.contextmanager
def restore(carrier: Any, *, getter: Getter[Any] | None = None) -> Iterator[Context]:
    """Attach the context extracted from `carrier` for the ``with`` block, then detach it."""
    ctx = extract(carrier, getter=getter)
    token = otel_context.attach(ctx)
    try:
        yield ctx
    finally:
        otel_context.detach(token)
