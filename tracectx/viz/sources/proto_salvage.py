"""A protobuf message that upb refuses, rebuilt so every part that can be read is kept.

upb refuses a whole message for one part nested past its depth limit (100): an attribute array
48 deep (kvlist 32) inside one span loses every span of the batch. When `TracesData` will not
parse, `salvage` walks its wire format: each length-delimited field of a message type is tried
where it stands (wrapped in its ancestors, each holding only it, so upb counts the same depth)
and, when it fails there, walked the same way. An ``AnyValue`` that fails is cut where the
JSON readers cut a value (`MAX_VALUE_DEPTH`, deeper parts ``<nested too deep>``; the string
alone when it does not parse even on its own) and any other part that cannot be read is left
out. The walk only descends into parts that fail, so its work is a few parses of the input
per level of the way down (six levels from the top to an attribute value).

Hand-written: protobuf's Python API has no tolerant parse and no way to raise upb's limit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tracectx.viz.sources.fields import MAX_VALUE_DEPTH, TOO_DEEP
from tracectx.viz.sources.limits import charge

__all__ = ["salvage"]

_ANY_VALUE = "opentelemetry.proto.common.v1.AnyValue"
_MAX_WALK_DEPTH = 12  # TracesData → … → AnyValue is 6 levels; deeper failures are dropped


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("bad varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _fields(data: bytes) -> list[tuple[int, int, int, int]]:
    """``(field number, wire type, start of the field, end)`` of each field; `ValueError` on
    anything that is not well-formed wire format (groups included: no OTLP field is one)."""
    out = []
    pos, end = 0, len(data)
    while pos < end:
        start = pos
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            _, pos = _varint(data, pos)
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        elif wire == 2:
            length, pos = _varint(data, pos)
            pos += length
        else:
            raise ValueError(f"wire type {wire}")
        if pos > end or number == 0:
            raise ValueError("field past the end")
        out.append((number, wire, start, pos))
        if not len(out) & 1023:  # the budget's items, as the walk goes
            charge(1024)
    return out


class _Salvage:
    def __init__(self, top: Any, plain: Callable[[Any], Any]) -> None:
        from google.protobuf import message_factory

        self._top, self._plain = top, plain
        self._class_of = message_factory.GetMessageClass
        self.cut = 0
        self.dropped: dict[str, int] = {}

    @staticmethod
    def _parses(cls: Any, data: bytes) -> bool:
        from google.protobuf.message import DecodeError

        try:
            cls.FromString(data)
        except (DecodeError, RecursionError, ValueError):
            return False
        return True

    def _fits(self, chain: list[bytes], data: bytes) -> bool:
        """True when `data` parses where it stands: inside its ancestors (`chain`, the keys of
        the fields from the top down), each holding only it, so upb counts the same depth."""
        for key in reversed(chain):
            data = key + _encode_varint(len(data)) + data
        return self._parses(self._top, data)

    def _any_value(self, cls: Any, data: bytes) -> bytes | None:
        """An ``AnyValue`` that fails where it stands: cut to `MAX_VALUE_DEPTH` as the readers
        cut it when it parses on its own, else the string ``<nested too deep>`` when its
        outer level is well-formed; None when not even that (a broken value, not a deep one)."""
        if self._parses(cls, data):
            value = _encode_value(cls, self._plain(cls.FromString(data)))
        else:
            try:
                _fields(data)
            except ValueError:
                return None
            value = cls(string_value=TOO_DEEP)
        self.cut += 1
        return bytes(value.SerializeToString())

    def clean(self, cls: Any, data: bytes, chain: list[bytes]) -> bytes | None:
        """`data` as bytes that parse where they stand (parts cut or left out), or None."""
        if self._fits(chain, data):
            return data
        descriptor = cls.DESCRIPTOR
        if descriptor.full_name == _ANY_VALUE:
            value = self._any_value(cls, data)
            return value if value is not None and self._fits(chain, value) else None
        if len(chain) >= _MAX_WALK_DEPTH:
            return None
        try:
            fields = _fields(data)
        except ValueError:
            return None
        out = bytearray()
        for number, wire, start, end in fields:
            field = descriptor.fields_by_number.get(number)
            if wire != 2 or field is None or field.message_type is None:
                out += data[start:end]
                continue
            key_end = _varint(data, start)[1]
            key = data[start:key_end]
            body = _varint(data, key_end)[1]  # past the length
            part_cls = self._class_of(field.message_type)
            part = self.clean(part_cls, data[body:end], [*chain, key])
            if part is None:
                name = field.message_type.name
                self.dropped[name] = self.dropped.get(name, 0) + 1
                continue
            out += key
            out += _encode_varint(len(part))
            out += part
        rebuilt = bytes(out)
        return rebuilt if self._fits(chain, rebuilt) else None


def _encode_value(cls: Any, value: Any) -> Any:
    """A plain value (as the readers make of an ``AnyValue``) as an ``AnyValue`` again."""
    out = cls()
    if isinstance(value, bool):
        out.bool_value = value
    elif isinstance(value, int):
        out.int_value = value
    elif isinstance(value, float):
        out.double_value = value
    elif isinstance(value, str):
        out.string_value = value
    elif isinstance(value, list):
        out.array_value.values.extend(_encode_value(cls, v) for v in value)
    elif isinstance(value, dict):
        for key, item in value.items():
            out.kvlist_value.values.add(key=key).value.CopyFrom(_encode_value(cls, item))
    return out


def salvage(cls: Any, data: bytes, plain: Callable[[Any], Any]) -> tuple[Any | None, list[str]]:
    """The message of type `cls` read from `data` with what upb refuses cut (an ``AnyValue``,
    made plain by `plain` as the reader would) or left out, and the problems saying what;
    None when nothing of it can be read."""
    walk = _Salvage(cls, plain)
    cleaned = walk.clean(cls, data, [])
    problems = []
    if walk.cut:
        problems.append(
            f"{walk.cut} attribute value(s) nested too deep for the protobuf parser,"
            f" cut at depth {MAX_VALUE_DEPTH} (or to {TOO_DEEP!r})"
        )
    for name, count in sorted(walk.dropped.items()):
        problems.append(f"{count} {name} part(s) that are not valid protobuf, skipped")
    return (None if cleaned is None else cls.FromString(cleaned)), problems
