"""`read_contract` (one pass with a slot table, views built positionally) reads every attribute
and event mapping exactly as the plain reader it replaced, kept here as the oracle."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tracectx import semconv as sc
from tracectx.contract import (
    MAX_MARKS,
    MESSAGE_LIMIT,
    STACK_LIMIT,
    ContractView,
    HandledMark,
    RetryMark,
    read_contract,
)
from tracectx.redaction import redact


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


def oracle(
    attributes: Mapping[str, Any],
    events: Iterable[tuple[str, Mapping[str, Any] | None]] = (),
    status_message: str = "",
) -> ContractView:
    """The reader before the slot table, verbatim (keyword construction, helper calls)."""
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


CONTRACT_KEYS = [*_TEXT_FIELDS, sc.ATTR_ATTEMPT, sc.ATTR_RETRY_WAIT_S, sc.EXC_TYPE]
META_KEYS = [sc.ATTR_META_PREFIX + k for k in ("order", "password", "api_key", "a.token", "")]
LIMITS = [32, 64, 128, 512, 64 * 33, MESSAGE_LIMIT, STACK_LIMIT]  # every length cut


def _long(n: int) -> str:
    return ("x,y" * (n // 3 + 1))[:n]


keys = st.sampled_from(CONTRACT_KEYS + META_KEYS) | st.text(max_size=12)
texts = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["", "42", "0042", "1234567890", "1.5", "nan", "-3", ",a,,b,", "1e400"]),
    st.text(alphabet="ab,", min_size=20, max_size=3000),  # member lists
    st.sampled_from(LIMITS).flatmap(lambda n: st.sampled_from([n - 1, n, n + 1])).map(_long),
)
scalars = st.one_of(texts, texts, st.none(), st.booleans(), st.integers(), st.floats())
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
    max_leaves=8,
)
attributes = st.dictionaries(keys | st.integers(), values, max_size=10)  # int keys: tolerated
event_names = st.sampled_from(
    [sc.EVENT_EXCEPTION, sc.EVENT_RETRY, sc.EVENT_HANDLED, sc.EVENT_EXPECTED, "log"]
) | st.text(max_size=6)
EVENT_KEYS = [
    sc.EXC_TYPE,
    sc.EXC_MESSAGE,
    sc.EXC_STACKTRACE,
    sc.ATTR_ID,
    sc.ATTR_KIND,
    sc.ATTR_CODE,
    sc.ATTR_ERROR_TYPE,
    sc.ATTR_ATTEMPT,
    sc.ATTR_RETRY_WAIT_S,
]
event_keys = st.sampled_from(EVENT_KEYS)
events = st.lists(
    st.tuples(
        event_names,
        st.none()
        | st.dictionaries(event_keys | st.text(max_size=6), values, max_size=3)
        # every event field at once, mostly text
        | st.fixed_dictionaries({}, optional={k: scalars for k in EVENT_KEYS}),
    ),
    max_size=6,
)
status = st.text(max_size=20) | st.text(min_size=4090, max_size=4100) | st.none() | st.integers()


def _same(new: ContractView, old: ContractView) -> None:
    assert type(new) is ContractView
    assert repr(new) == repr(old)  # repr: types too (RetryMark vs tuple), and NaN wait_s
    assert [type(v) for v in new] == [type(v) for v in old]
    assert [type(m) for m in new.retries + new.handled] == [
        type(m) for m in old.retries + old.handled
    ]


@settings(max_examples=600)
@given(attributes, events, status)
def test_reader_reads_as_the_plain_reader(attrs: dict[Any, Any], evs: Any, message: Any) -> None:
    _same(read_contract(attrs, evs, message), oracle(attrs, evs, message))
    _same(read_contract(attrs), oracle(attrs))
    _same(read_contract(attrs, iter(evs)), oracle(attrs, iter(evs)))  # any iterable of events


# Spans shaped as recording writes them: contract keys with text values, contract events.
shaped_attributes = st.fixed_dictionaries(
    {}, optional={k: texts for k in [*CONTRACT_KEYS, *META_KEYS]}
)
shaped_events = st.lists(
    st.tuples(
        st.sampled_from([sc.EVENT_EXCEPTION, sc.EVENT_RETRY, sc.EVENT_HANDLED, sc.EVENT_EXPECTED]),
        st.fixed_dictionaries({}, optional=dict.fromkeys(EVENT_KEYS, texts)),
    ),
    max_size=4,
)


@settings(max_examples=400)
@given(shaped_attributes, shaped_events, texts)
def test_contract_shaped_spans_read_as_the_plain_reader(
    attrs: dict[str, Any], evs: Any, message: str
) -> None:
    _same(read_contract(attrs, evs, message), oracle(attrs, evs, message))


def test_every_length_cut_is_kept() -> None:
    names = [sc.EVENT_EXCEPTION, sc.EVENT_RETRY, sc.EVENT_HANDLED, sc.EVENT_EXPECTED]
    for n in sorted({m + d for m in LIMITS for d in (-1, 0, 1)}):
        attrs = dict.fromkeys([*CONTRACT_KEYS, *META_KEYS], _long(n))
        evs: list[tuple[str, dict[str, Any]]] = [
            (name, dict.fromkeys(EVENT_KEYS, _long(n))) for name in names
        ]
        _same(read_contract(attrs, evs, _long(n)), oracle(attrs, evs, _long(n)))
        _same(read_contract({}, [], _long(n)), oracle({}, [], _long(n)))


def test_mark_limits_are_kept() -> None:
    marks: list[tuple[str, dict[str, Any]]] = [
        (sc.EVENT_RETRY, {sc.ATTR_ATTEMPT: i}) for i in range(MAX_MARKS + 5)
    ]
    marks += [(sc.EVENT_HANDLED, {sc.ATTR_ID: f"e{i}"}) for i in range(MAX_MARKS + 5)]
    view = read_contract({}, marks)
    assert len(view.retries) == len(view.handled) == MAX_MARKS
    _same(view, oracle({}, marks))


def test_sensitive_metadata_is_masked() -> None:
    attrs = {sc.ATTR_META_PREFIX + "password": "raw", sc.ATTR_META_PREFIX + "n": {"token": "t"}}
    view = read_contract(attrs)
    assert view.metadata == {"password": "[REDACTED]", "n": {"token": "[REDACTED]"}}
    _same(view, oracle(attrs))
