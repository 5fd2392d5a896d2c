"""The error envelope: a JSON-safe dict that carries an error's identity across processes.

Celery results, Kafka DLQ headers and process pools all carry this shape::

    {"v": 1, "type": "app.errors.PaymentDeclined", "kind": "BUSINESS", "code": "E42",
     "message": "...", "metadata": {...}, "error_id": "9f...", "cause_id": null,
     "origin": {"trace_id": "...", "span_id": "...", "service": "billing"}}

Metadata is redacted on the way out. Reading is defensive: input from the wire may be missing
fields, of the wrong type, huge or not UTF-8; `from_dict` either rebuilds a safe error or raises
`EnvelopeError` saying what is wrong.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

from tracectx.classify import classify
from tracectx.context import get_bound
from tracectx.errors import (
    _ID_ATTR,
    ErrorOrigin,
    RemoteError,
    TracedError,
    cause_of,
    error_id,
    get_origin,
    set_origin,
    type_name,
)
from tracectx.kinds import ErrorKind, KindError, get_kind
from tracectx.redaction import redact

__all__ = [
    "ENVELOPE_VERSION",
    "EnvelopeError",
    "adopt",
    "dumps_envelope",
    "from_dict",
    "loads_envelope",
    "to_dict",
]

ENVELOPE_VERSION = 1
MAX_ENVELOPE_BYTES = 64 * 1024
MAX_MESSAGE = 4096
MAX_METADATA_ENTRIES = 64
MAX_METADATA_VALUE = 1024
MAX_DEPTH = 16
_HEX_ID = re.compile(r"[0-9a-f]{1,32}")  # always fullmatch: `$` would let "ab\n" through


class EnvelopeError(ValueError):
    """An envelope could not be read; the message says which field and why."""


def _json_safe(value: Any, depth: int = 0) -> Any:
    """`value` made of JSON types only; nesting past `MAX_DEPTH` becomes ``"…"`` (inbound
    envelopes are decoded by frameworks before we see them, so depth is bounded here too)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if depth >= MAX_DEPTH:
        return "…"
    if isinstance(value, Mapping):
        return {str(k)[:128]: _json_safe(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v, depth + 1) for v in value]
    return str(value)


def to_dict(exc: BaseException) -> dict[str, Any]:
    """The envelope of any exception (metadata redacted, values made JSON-safe)."""
    metadata: Mapping[str, Any]
    if isinstance(exc, TracedError):
        kind, code, message, metadata = exc.kind, exc.code, exc.message, exc.metadata
    else:
        kind = classify(exc)
        code, message = kind.name.lower(), str(exc)
        found = getattr(exc, "metadata", None)  # set by `adopt`, else what is bound here
        metadata = found if isinstance(found, Mapping) else get_bound()
    cause = cause_of(exc)
    origin = get_origin(exc)
    return {
        "v": ENVELOPE_VERSION,
        "type": type_name(exc),
        "kind": kind.name,
        "code": code,
        "message": message[:MAX_MESSAGE],
        "metadata": _json_safe(redact(metadata)),
        "error_id": error_id(exc),
        "cause_id": error_id(cause) if cause is not None else None,
        "origin": (
            {"trace_id": origin.trace_id, "span_id": origin.span_id, "service": origin.service}
            if origin
            else None
        ),
    }


def _str_field(data: Mapping[str, Any], name: str, *, required: bool, limit: int) -> str | None:
    value = data.get(name)
    if value is None:
        if required:
            raise EnvelopeError(f"envelope field {name!r} is missing")
        return None
    if not isinstance(value, str):
        raise EnvelopeError(f"envelope field {name!r} must be a string, not {type(value).__name__}")
    return value[:limit]


def _metadata(raw: Any) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        kind = type(raw).__name__
        raise EnvelopeError(f"envelope field 'metadata' must be an object, not {kind}")
    out: dict[str, Any] = {}
    for key, value in list(raw.items())[:MAX_METADATA_ENTRIES]:
        if isinstance(value, str):
            value = value[:MAX_METADATA_VALUE]
        elif not (value is None or isinstance(value, bool | int | float)):
            value = json.dumps(_json_safe(value, 1))[:MAX_METADATA_VALUE]
        out[str(key)[:128]] = value
    return redact(out)


def _origin(raw: Any) -> ErrorOrigin | None:
    if not isinstance(raw, Mapping):
        return None
    trace_id, span_id = raw.get("trace_id"), raw.get("span_id")
    if not (isinstance(trace_id, str) and isinstance(span_id, str)):
        return None
    if not (_HEX_ID.fullmatch(trace_id) and _HEX_ID.fullmatch(span_id)):
        return None
    service = raw.get("service")
    return ErrorOrigin(trace_id, span_id, service[:256] if isinstance(service, str) else None)


def from_dict(data: Any) -> TracedError:
    """Rebuild an error from an envelope; `EnvelopeError` if it is not one.

    Unknown kinds fall back to UNKNOWN (the name is kept in ``metadata["remote_kind"]``);
    over-long strings are cut; a malformed origin is dropped.
    """
    if not isinstance(data, Mapping):
        raise EnvelopeError(f"envelope must be an object, not {type(data).__name__}")
    version = data.get("v", ENVELOPE_VERSION)
    if not isinstance(version, int) or isinstance(version, bool) or version > ENVELOPE_VERSION:
        shown = version if isinstance(version, int) else type(version).__name__
        raise EnvelopeError(f"unsupported envelope version {str(shown)[:20]}")
    message = _str_field(data, "message", required=True, limit=MAX_MESSAGE) or ""
    eid = _str_field(data, "error_id", required=True, limit=32)
    if eid is None or not _HEX_ID.fullmatch(eid):
        raise EnvelopeError("envelope field 'error_id' must be 1-32 lowercase hex digits")
    kind_name = _str_field(data, "kind", required=False, limit=64) or "UNKNOWN"
    metadata = _metadata(data.get("metadata"))
    try:
        kind = get_kind(kind_name)
    except KindError:
        kind = ErrorKind.UNKNOWN
        metadata["remote_kind"] = kind_name
    err = RemoteError(
        message,
        remote_type=_str_field(data, "type", required=False, limit=256) or "",
        kind=kind,
        code=_str_field(data, "code", required=False, limit=128),
        error_id=eid,
    )
    err.metadata = metadata
    cause_id = _str_field(data, "cause_id", required=False, limit=32)
    if cause_id and _HEX_ID.fullmatch(cause_id):
        cause = Exception(f"cause {cause_id}")
        cause._tracectx_error_id = cause_id  # type: ignore[attr-defined]
        err.__cause__ = cause
    origin = _origin(data.get("origin"))
    if origin is not None:
        set_origin(err, origin)
    return err


def adopt(exc: BaseException, data: Any) -> BaseException:
    """Give `exc` (rebuilt by a framework from its type and args) the identity in envelope
    `data`: error id, origin, kind — and code and metadata for a `TracedError`. Returns `exc`;
    `EnvelopeError` if `data` is not an envelope."""
    remote = from_dict(data)
    try:
        setattr(exc, _ID_ATTR, remote.error_id)
        if isinstance(exc, TracedError):
            exc.kind, exc.code, exc.metadata = remote.kind, remote.code, remote.metadata
        else:
            exc.tracectx_kind = remote.kind  # type: ignore[attr-defined]
            exc.metadata = remote.metadata  # type: ignore[attr-defined]
    except (AttributeError, TypeError):  # __slots__ exceptions keep only what they can
        return exc
    if remote.__cause__ is not None and exc.__cause__ is None:
        exc.__cause__ = remote.__cause__
    origin = get_origin(remote)
    if origin is not None:
        set_origin(exc, origin)
    return exc


def dumps_envelope(exc: BaseException) -> bytes:
    """The envelope as compact UTF-8 JSON, for headers and result backends."""
    return json.dumps(to_dict(exc), separators=(",", ":"), ensure_ascii=False).encode()


def loads_envelope(raw: bytes | str) -> TracedError:
    """Parse `dumps_envelope` output; `EnvelopeError` for oversized, non-UTF-8 or broken JSON."""
    if len(raw) > MAX_ENVELOPE_BYTES:
        raise EnvelopeError(f"envelope is {len(raw)} bytes, more than {MAX_ENVELOPE_BYTES}")
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        data = json.loads(text)
    except UnicodeDecodeError as exc:
        raise EnvelopeError(f"envelope is not UTF-8: {exc.reason} at byte {exc.start}") from None
    except json.JSONDecodeError as exc:
        raise EnvelopeError(f"envelope is not JSON: {exc.msg} at {exc.pos}") from None
    except RecursionError:
        raise EnvelopeError("envelope nests too deeply") from None
    return from_dict(data)
