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


# Span attributes read as text: attribute -> (index in ContractView, slice cutting it to the
# most characters kept); ``tracectx.retry.attempt`` (no slice) is read as an int. A table, so a
# span's attributes are read in one pass with one lookup each; slices made once, not per value.
_SLOTS: dict[str, tuple[int, slice | None]] = {
    sc.ATTR_ID: (0, slice(64)),
    sc.ATTR_ROLE: (1, slice(32)),
    sc.ATTR_KIND: (2, slice(64)),
    sc.ATTR_CODE: (3, slice(128)),
    sc.ATTR_ERROR_TYPE: (4, slice(512)),
    sc.ATTR_ORIGIN_SPAN_ID: (5, slice(64)),
    sc.ATTR_ORIGIN_TRACE_ID: (6, slice(64)),
    sc.ATTR_CAUSE_ID: (7, slice(64)),
    sc.ATTR_MEMBER_IDS: (8, slice(64 * 33)),
    sc.ATTR_ATTEMPT: (15, None),
}
_TEXT_BLANK = ("",) * 9  # ContractView's first nine fields, error_id .. member_ids (as text)
_HANDLED_EVENTS = (sc.EVENT_HANDLED, sc.EVENT_EXPECTED)
# Views are built with tuple.__new__ from a tuple in field order (a C call): the NamedTuple's
# generated __new__ is a Python frame, and keywords cost a dict per view (the analysis reads a
# view of every span that carries the contract).
_new: Any = tuple.__new__


def read_contract(
    attributes: Mapping[str, Any],
    events: Iterable[tuple[str, Mapping[str, Any] | None]] = (),
    status_message: str = "",
) -> ContractView:
    """Read the contract off a span's `attributes` and `events` (name, attributes) pairs.

    Tolerant: values of the wrong type are ignored, never raised on. One pass over the
    attributes: a span is read often (the analysis reads every failing span).
    """
    text: list[Any] = list(_TEXT_BLANK)
    metadata: dict[str, Any] | None = None
    attempt: int | None = None
    prefix, cut = sc.ATTR_META_PREFIX, len(sc.ATTR_META_PREFIX)
    slot_of = _SLOTS.get
    for key, value in attributes.items():
        slot = slot_of(key)
        if slot is not None:
            index, cut_to = slot
            if cut_to is not None:
                text[index] = value[cut_to] if isinstance(value, str) else ""
            else:
                attempt = _int(value)
        elif isinstance(key, str) and key.startswith(prefix):
            if metadata is None:
                metadata = {}
            metadata[key[cut:]] = value
    exc_type, exc_message, stack = "", "", ""
    retries: list[RetryMark] | None = None
    handled: list[HandledMark] | None = None
    for name, raw in events:
        ev = raw or {}
        if name == sc.EVENT_EXCEPTION:
            exc_type = _text(ev.get(sc.EXC_TYPE))
            exc_message = _text(ev.get(sc.EXC_MESSAGE), MESSAGE_LIMIT)
            stack = _text(ev.get(sc.EXC_STACKTRACE), 10**9)[-STACK_LIMIT:]
        elif name == sc.EVENT_RETRY:
            if retries is None:
                retries = []
            if len(retries) < MAX_MARKS:
                retries.append(
                    _new(
                        RetryMark,
                        (
                            _int(ev.get(sc.ATTR_ATTEMPT)) or 0,
                            _float(ev.get(sc.ATTR_RETRY_WAIT_S)),
                            _text(ev.get(sc.ATTR_ID), 64),
                            _text(ev.get(sc.ATTR_KIND), 64),
                            _text(ev.get(sc.ATTR_ERROR_TYPE)),
                        ),
                    )
                )
        elif name in _HANDLED_EVENTS:
            if handled is None:
                handled = []
            if len(handled) < MAX_MARKS and (hid := _text(ev.get(sc.ATTR_ID), 64)):
                handled.append(
                    _new(
                        HandledMark,
                        (
                            hid,
                            _text(ev.get(sc.ATTR_KIND), 64),
                            _text(ev.get(sc.ATTR_CODE), 128),
                            _text(ev.get(sc.ATTR_ERROR_TYPE)),
                            name == sc.EVENT_EXPECTED,
                        ),
                    )
                )
    members = text[8]
    text[8] = tuple(filter(None, members.split(","))) if members else ()
    text[4] = text[4] or exc_type
    return _new(  # type: ignore[no-any-return]
        ContractView,
        (
            *text,
            redact(metadata) if metadata else {},
            exc_type,
            exc_message or _text(status_message, MESSAGE_LIMIT),
            stack,
            tuple(retries) if retries else (),
            tuple(handled) if handled else (),
            attempt,
        ),
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
