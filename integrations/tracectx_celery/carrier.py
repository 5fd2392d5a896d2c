"""Trace context in Celery messages.

Publishing writes the propagation fields into the message headers (protocol 2), which the
worker exposes both as attributes of ``task.request`` and in ``task.request.headers``; reading
tries both, and plain dicts (raw message headers) too. Values that are not strings, or longer
than `MAX_VALUE`, are refused (counted by a fixed reason, with the field name — ours, not the
sender's — as detail), so a hostile message starts a fresh root instead of failing the task.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry.context import Context
from opentelemetry.propagators.textmap import Getter

from tracectx.metrics import note_rejected
from tracectx.propagation import extract

__all__ = [
    "LINKS_HEADER",
    "MAX_VALUE",
    "PREVIOUS_ATTEMPT_HEADER",
    "RequestGetter",
    "context_from",
    "read",
]

TRANSPORT = "celery"
PREVIOUS_ATTEMPT_HEADER = "tracectx_previous_attempt"
LINKS_HEADER = "tracectx_links"
MAX_VALUE = 8192


def read(carrier: Any, key: str) -> Any:
    """`key` from a request (attribute, then its ``headers`` dict) or a headers mapping.

    Celery's request context keeps the message headers as instance attributes, so they are
    looked up in its ``__dict__``: most of the keys read per task are absent, and a missed
    ``getattr`` raises and catches an AttributeError each time. Objects without a ``__dict__``
    (the worker's slotted ``Request``) are read with ``getattr``.
    """
    if isinstance(carrier, Mapping):
        return carrier.get(key)
    attrs = getattr(carrier, "__dict__", None)
    if isinstance(attrs, dict):
        value = attrs.get(key)
        inner = attrs.get("headers") if value is None else None
    else:
        value = getattr(carrier, key, None)
        inner = getattr(carrier, "headers", None) if value is None else None
    if isinstance(inner, Mapping):
        value = inner.get(key)
    return value


class RequestGetter(Getter[Any]):
    """Propagation fields from a Celery request or headers dict; non-strings refused."""

    def get(self, carrier: Any, key: str) -> list[str] | None:
        value = read(carrier, key)
        if value is None:
            return None
        if not isinstance(value, str):
            note_rejected(TRANSPORT, "wrong_type_header", key)
            return None
        if len(value) > MAX_VALUE:
            note_rejected(TRANSPORT, "oversized_header", key)
            return None
        return [value]

    def keys(self, carrier: Any) -> list[str]:
        if isinstance(carrier, Mapping):
            return [str(k) for k in carrier]
        inner = getattr(carrier, "headers", None)
        return [str(k) for k in inner] if isinstance(inner, Mapping) else []


_getter = RequestGetter()


def context_from(carrier: Any) -> Context:
    """The publisher's context from a request or message headers; fresh root if unusable."""
    return extract(carrier, getter=_getter, transport=TRANSPORT)
