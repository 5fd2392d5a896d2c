"""The one reader of the span contract: what `tracectx.semconv` says about a span, from any input.

Recording writes the contract; the visualiser, the alert engine and the span-stream consumer read
it — all through `read_contract`, so the metadata prefix, the exception event, retry and handled
events are parsed in one place. It takes plain attributes and events, so SDK spans
(`read_sdk_span`), OTLP JSON or protobuf and Jaeger exports (via the visualiser's span model) all
read the same way. Metadata is redacted here too: a span file written by someone else may carry
raw secrets.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

from opentelemetry import trace

from tracectx import semconv as sc
from tracectx.redaction import redact

__all__ = [
    "ContractView",
    "HandledMark",
    "RetryMark",
    "read_contract",
    "read_sdk_span",
    "span_ids",
]

STACK_LIMIT = 8192
MESSAGE_LIMIT = 4096
MAX_MARKS = 64  # retry/handled events read per span


# Views are NamedTuples, not frozen dataclasses: as immutable, and a frozen dataclass's
# __init__ (one object.__setattr__ per field) cost about 4x as much, a view being read per span.
_NO_METADATA: Mapping[str, Any] = MappingProxyType({})


class RetryMark(NamedTuple):
    """A ``tracectx.retry`` event: attempt `attempt` failed with `error_id`, next in `wait_s`."""

    attempt: int
    wait_s: float
    error_id: str
    kind: str
    error_type: str


class HandledMark(NamedTuple):
    """A ``tracectx.error.handled`` (or ``expected``) event: the span absorbed `error_id`."""

    error_id: str
    kind: str
    code: str
    error_type: str
    expected: bool = False


class ContractView(NamedTuple):
    """What the contract says about one span. Empty strings / tuples where it says nothing."""

    error_id: str = ""
    role: str = ""  # origin / propagated / absorbed, or "" (no tracectx error attributes)
    kind: str = ""
    code: str = ""
    error_type: str = ""
    origin_span_id: str = ""
    origin_trace_id: str = ""
    cause_id: str = ""
    member_ids: tuple[str, ...] = ()
    metadata: Mapping[str, Any] = _NO_METADATA
    exception_type: str = ""
    exception_message: str = ""
    stack: str = ""
    retries: tuple[RetryMark, ...] = ()
    handled: tuple[HandledMark, ...] = ()
    attempt: int | None = None  # a Celery run span's attempt number

    @property
    def has_error(self) -> bool:
        """True if tracectx recorded an error on this span (origin or propagated)."""
        return bool(self.error_id) and self.role in (sc.ROLE_ORIGIN, sc.ROLE_PROPAGATED)


def _text(value: Any, limit: int = 512) -> str:
    return value[:limit] if isinstance(value, str) else ""


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit() and len(value) < 10:
        return int(value)
    return None


def _float(value: Any) -> float:
    if isinstance(value, bool):
        return 0.0
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(value) if isinstance(value, str) and len(value) < 32 else 0.0
    except ValueError:
        return 0.0


# Span attributes read as text: attribute -> (ContractView field, most characters kept).
_TEXT_FIELDS: dict[str, tuple[str, int]] = {
    sc.ATTR_ID: ("error_id", 64),
    sc.ATTR_ROLE: ("role", 32),
    sc.ATTR_KIND: ("kind", 64),
    sc.ATTR_CODE: ("code", 128),
    sc.ATTR_ERROR_TYPE: ("error_type", 512),
    sc.ATTR_ORIGIN_SPAN_ID: ("origin_span_id", 64),
    sc.ATTR_ORIGIN_TRACE_ID: ("origin_trace_id", 64),
    sc.ATTR_CAUSE_ID: ("cause_id", 64),
    sc.ATTR_MEMBER_IDS: ("member_ids", 64 * 33),
}


def read_contract(
    attributes: Mapping[str, Any],
    events: Iterable[tuple[str, Mapping[str, Any] | None]] = (),
    status_message: str = "",
) -> ContractView:
    """Read the contract off a span's `attributes` and `events` (name, attributes) pairs.

    Tolerant: values of the wrong type are ignored, never raised on. One pass over the
    attributes: a span is read often (the analysis reads every failing span).
    """
    found: dict[str, Any] = {}
    metadata: dict[str, Any] = {}
    attempt: int | None = None
    prefix, cut = sc.ATTR_META_PREFIX, len(sc.ATTR_META_PREFIX)
    for key, value in attributes.items():
        field = _TEXT_FIELDS.get(key)
        if field is not None:
            found[field[0]] = value[: field[1]] if isinstance(value, str) else ""
        elif key == sc.ATTR_ATTEMPT:
            attempt = _int(value)
        elif isinstance(key, str) and key.startswith(prefix):
            metadata[key[cut:]] = value
    exc_type, exc_message, stack = "", "", ""
    retries: list[RetryMark] = []
    handled: list[HandledMark] = []
    for name, raw in events:
        ev = raw or {}
        if name == sc.EVENT_EXCEPTION:
            exc_type = _text(ev.get(sc.EXC_TYPE))
            exc_message = _text(ev.get(sc.EXC_MESSAGE), MESSAGE_LIMIT)
            stack = _text(ev.get(sc.EXC_STACKTRACE), 10**9)[-STACK_LIMIT:]
        elif name == sc.EVENT_RETRY and len(retries) < MAX_MARKS:
            retries.append(
                RetryMark(
                    attempt=_int(ev.get(sc.ATTR_ATTEMPT)) or 0,
                    wait_s=_float(ev.get(sc.ATTR_RETRY_WAIT_S)),
                    error_id=_text(ev.get(sc.ATTR_ID), 64),
                    kind=_text(ev.get(sc.ATTR_KIND), 64),
                    error_type=_text(ev.get(sc.ATTR_ERROR_TYPE)),
                )
            )
        elif name in (sc.EVENT_HANDLED, sc.EVENT_EXPECTED) and len(handled) < MAX_MARKS:
            hid = _text(ev.get(sc.ATTR_ID), 64)
            if hid:
                handled.append(
                    HandledMark(
                        error_id=hid,
                        kind=_text(ev.get(sc.ATTR_KIND), 64),
                        code=_text(ev.get(sc.ATTR_CODE), 128),
                        error_type=_text(ev.get(sc.ATTR_ERROR_TYPE)),
                        expected=name == sc.EVENT_EXPECTED,
                    )
                )
    members = found.pop("member_ids", "")
    found["error_type"] = found.get("error_type") or exc_type
    return ContractView(
        **found,
        member_ids=tuple(m for m in members.split(",") if m) if members else (),
        metadata=redact(metadata) if metadata else {},
        exception_type=exc_type,
        exception_message=exc_message or _text(status_message, MESSAGE_LIMIT),
        stack=stack,
        retries=tuple(retries),
        handled=tuple(handled),
        attempt=attempt,
    )


def read_sdk_span(span: Any) -> ContractView:
    """`read_contract` of an ended OTel SDK span (``ReadableSpan``)."""
    status = getattr(span, "status", None)
    return read_contract(
        span.attributes or {},
        ((e.name, e.attributes) for e in span.events),
        getattr(status, "description", None) or "",
    )


def span_ids(span: Any) -> tuple[str, str]:
    """Hex trace and span id of an SDK span, as Jaeger shows them."""
    ctx = span.context
    return trace.format_trace_id(ctx.trace_id), trace.format_span_id(ctx.span_id)
