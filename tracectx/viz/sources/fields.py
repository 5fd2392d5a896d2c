"""Typed reads of fields from untrusted span files: every wrong type becomes a listed problem.

The readers never trust a file's shape. A field of the wrong type, a time out of range, a value
nested too deep or an id that is not hex is reported in the problem list and replaced by a safe
default (or, for ids, a stable hex stand-in), so the rest of the file is still analysed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
from typing import Any

from tracectx.viz.sources.limits import charge

__all__ = [
    "MAX_TIME_NS",
    "ProblemList",
    "MAX_VALUE_DEPTH",
    "SOURCE_SPAN_ID",
    "SOURCE_TRACE_ID",
    "TOO_DEEP",
    "as_dict",
    "as_list",
    "describe",
    "mapped_id",
    "parse_id",
    "plain_value",
    "text",
    "time_value",
]

SOURCE_TRACE_ID = "tracectx.viz.source_trace_id"
SOURCE_SPAN_ID = "tracectx.viz.source_span_id"
MAX_VALUE_DEPTH = 8  # attribute values nested deeper are replaced by TOO_DEEP
TOO_DEEP = "<nested too deep>"
MAX_TIME_NS = 2**63 - 1  # the OTel SDK's range (year 2262)
_MAX_SOURCE_ID = 200
_HEX = frozenset("0123456789abcdef")


class ProblemList(list[str]):
    """The problems of one document: the first `MAX_LISTED` kept, the rest only counted, so a
    document with millions of bad parts cannot hold millions of messages (they took ~50 times
    the document's size). `closed` gives the plain list with the count."""

    MAX_LISTED = 1000

    def __init__(self) -> None:
        super().__init__()
        self.dropped = 0

    def append(self, problem: str) -> None:
        if len(self) < self.MAX_LISTED:
            super().append(problem)
        else:
            self.dropped += 1

    def extend(self, problems: Any) -> None:
        for problem in problems:
            self.append(problem)

    def closed(self) -> list[str]:
        out = list(self)
        if self.dropped:
            out.append(f"{self.dropped} more problems in this document not listed")
        return out


def describe(value: Any) -> str:
    """A short, bounded name for `value` in a problem message (never its whole repr)."""
    if isinstance(value, str):
        return repr(value[:60] + ("…" if len(value) > 60 else ""))
    if value is None or isinstance(value, bool | int | float):
        return repr(value) if not isinstance(value, int) or abs(value) < 10**20 else "a big int"
    return f"a {type(value).__name__}"


def as_list(value: Any, what: str, problems: list[str]) -> list[Any]:
    """`value` if it is a JSON array; ``[]`` (and a problem unless it is missing) otherwise.
    Its entries are charged to the active work budget (`limits.charge`)."""
    if isinstance(value, list):
        charge(len(value))
        return value
    if value is not None:
        problems.append(f"{what}: expected an array, got {describe(value)}")
    return []


def as_dict(value: Any, what: str, problems: list[str]) -> dict[str, Any]:
    """`value` if it is a JSON object; ``{}`` (and a problem unless it is missing) otherwise.
    Its entries are charged to the active work budget."""
    if isinstance(value, dict):
        charge(len(value))
        return value
    if value is not None:
        problems.append(f"{what}: expected an object, got {describe(value)}")
    return {}


def text(value: Any, what: str, problems: list[str], default: str = "") -> str:
    """A string field; numbers are shown as text, anything else is `default` and a problem."""
    if value is None or value == "":
        return default
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return describe(value) if isinstance(value, int) and abs(value) >= 10**20 else str(value)
    problems.append(f"{what}: expected a string, got {describe(value)}")
    return default


def time_value(value: Any, what: str, problems: list[str], scale: int = 1) -> int:
    """A timestamp or duration in ns (`scale` ns per unit); 0 and a problem when it is not a
    number or falls outside 0..2**63 ns, so a 400-digit value cannot overflow later arithmetic."""
    if value is None or value == "":
        return 0
    number: int | None = None
    if isinstance(value, bool):
        number = None
    elif isinstance(value, int):
        number = value
    elif isinstance(value, float) and math.isfinite(value):
        number = int(value)
    elif isinstance(value, str) and len(value) <= 24 and value.strip().isdecimal():
        number = int(value.strip())
    if number is None or not 0 <= number <= MAX_TIME_NS // scale:
        problems.append(f"{what}: not a time in range: {describe(value)}, read as 0")
        return 0
    return number * scale


def mapped_id(raw: str, length: int) -> str:
    """A stable stand-in hex id of `length` digits for a non-hex id (same input, same id)."""
    digest = hashlib.blake2b(raw.encode("utf-8", "surrogatepass"), digest_size=length // 2)
    return digest.hexdigest()


def parse_id(raw: Any, length: int) -> tuple[str, str | None] | None:
    """``(hex id, original)`` for an id field: short hex is zero-padded (Jaeger's 64-bit trace
    ids), base64 of the right size is decoded (protobuf JSON), any other string is mapped to a
    stable hex id and returned as `original`. None for a missing, all-zero or non-string id."""
    if not isinstance(raw, str) or raw == "":
        return None
    source = raw
    low = source.lower()
    if len(low) <= length and set(low) <= _HEX:
        hex_id = low.rjust(length, "0")
        return None if set(hex_id) == {"0"} else (hex_id, None)
    if len(source) <= 4 * length:
        try:  # protobuf JSON writes ids as base64 bytes
            decoded = base64.b64decode(source, validate=True).hex()
        except (binascii.Error, ValueError):
            decoded = ""
        if len(decoded) == length:
            return None if set(decoded) == {"0"} else (decoded, None)
    return mapped_id(source, length), source[:_MAX_SOURCE_ID]


def plain_value(value: Any, depth: int = 0, problems: list[str] | None = None) -> Any:
    """`value` as plain JSON data nested at most `MAX_VALUE_DEPTH` deep (deeper parts become
    `TOO_DEEP`, listed in `problems` when given), so printing or encoding it cannot hit the
    recursion limit."""
    if isinstance(value, dict | list | tuple) and depth >= MAX_VALUE_DEPTH:
        if problems is not None:
            problems.append(f"attribute value nested deeper than {MAX_VALUE_DEPTH}, cut")
        return TOO_DEEP
    if isinstance(value, dict):
        charge(len(value))
        return {str(k): plain_value(v, depth + 1, problems) for k, v in value.items()}
    if isinstance(value, list | tuple):
        charge(len(value))
        return [plain_value(v, depth + 1, problems) for v in value]
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**20:
        return str(value) if abs(value) < 10**4000 else "<huge int>"
    if value is None or isinstance(value, str | bool | int | float):
        return value
    return str(value)[:1000]
