"""Read an untrusted YAML document into plain data, or say where it is wrong.

`read_yaml` refuses, before building any Python object, what would cost time or memory: more
than `Limits.max_bytes`, aliases (the "billion laughs" shape), nesting deeper than
`Limits.max_depth`, more than `Limits.max_nodes` nodes, more than `Limits.max_items` entries
in the sequence under one top-level key (``alert_rules``), tags other than YAML's core ones.
It then builds the data with libyaml (``CSafeLoader`` when available) and walks it once:
mapping keys must be strings, numbers finite and of at most `MAX_NUMBER_CHARS` characters.
Every refusal is a `YAMLDocumentError` whose message names the path (``alert_rules[3].window``)
or the line and column.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar

import yaml

__all__ = ["MAX_NUMBER_CHARS", "Limits", "YAMLDocumentError", "format_path", "read_yaml"]

MAX_NUMBER_CHARS = 100
_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_CORE_TAGS = frozenset(
    f"tag:yaml.org,2002:{name}" for name in ("str", "int", "float", "bool", "null", "seq", "map")
)


class YAMLDocumentError(ValueError):
    """The document cannot be used; the message says where and why."""


@dataclasses.dataclass(frozen=True)
class Limits:
    """Bounds checked while parsing, before any object is built."""

    max_bytes: int = 1024 * 1024
    max_depth: int = 32
    max_nodes: int = 100_000
    #: top-level key -> most entries its sequence may hold (e.g. ``{"alert_rules": 1000}``)
    max_items: tuple[tuple[str, int], ...] = ()


class _Invalid:
    """Stands in for a scalar that could not be read, so the walk reports it with its path."""

    __slots__ = ("why",)

    def __init__(self, why: str) -> None:
        self.why = why


class _StrictLoader(_Loader):  # type: ignore[valid-type,misc]
    """Safe loading without timestamps (config files have none), with scalars that cannot be
    read (``!!int foo``, a 5,000-digit number) kept as `_Invalid` instead of raising."""

    yaml_implicit_resolvers: ClassVar[dict[Any, list[tuple[str, Any]]]] = {
        first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            return super().construct_object(node, deep)
        value = str(node.value)
        numeric = node.tag in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")
        if numeric and len(value) > MAX_NUMBER_CHARS:
            return _Invalid(f"a number of {len(value)} characters (at most {MAX_NUMBER_CHARS})")
        try:
            return super().construct_object(node, deep)
        except yaml.YAMLError:
            raise
        except Exception as exc:  # a core scalar constructor choking on its text (`!!int ''`)
            kind = node.tag.rsplit(":", 1)[-1]
            return _Invalid(f"cannot read {value[:40]!r} as {kind} ({type(exc).__name__})")


def format_path(parts: tuple[str | int, ...] | list[str | int]) -> str:
    """``("alert_rules", 0, "window")`` as ``alert_rules[0].window``."""
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out.lstrip(".") or "(top level)"


def _check_events(text: str, limits: Limits) -> None:
    """One streaming pass over the parser's events, stopping at the first limit crossed."""
    per_key = dict(limits.max_items)
    # One frame per open collection: [is_mapping, children so far, last key, item limit].
    stack: list[list[Any]] = []
    nodes = 0
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, yaml.AliasEvent):
            raise YAMLDocumentError(f"{_where(stack)}: YAML aliases are not allowed")
        if isinstance(event, yaml.CollectionEndEvent):
            stack.pop()
            continue
        if not isinstance(event, yaml.NodeEvent):
            continue
        nodes += 1
        if nodes > limits.max_nodes:
            raise YAMLDocumentError(f"more than {limits.max_nodes} YAML nodes")
        tag = getattr(event, "tag", None)
        if tag is not None and tag != "!" and tag not in _CORE_TAGS:
            raise YAMLDocumentError(f"{_where(stack)}: YAML tag {tag[:60]!r} is not allowed")
        limit = None
        if stack:
            frame = stack[-1]
            index = frame[1]
            frame[1] += 1
            if frame[3] is not None and index >= frame[3]:
                raise YAMLDocumentError(f"{_where(stack)}: more than {frame[3]} entries")
            if frame[0] and index % 2 == 0:  # a key
                frame[2] = event.value if isinstance(event, yaml.ScalarEvent) else None
            elif len(stack) == 1 and frame[0] and isinstance(event, yaml.SequenceStartEvent):
                limit = per_key.get(frame[2])
        if isinstance(event, yaml.CollectionStartEvent):
            if len(stack) >= limits.max_depth:
                raise YAMLDocumentError(f"nests deeper than {limits.max_depth} levels")
            stack.append([isinstance(event, yaml.MappingStartEvent), 0, None, limit])


def _where(stack: list[list[Any]]) -> str:
    parts: list[str | int] = []
    for is_map, count, key, _ in stack:
        if is_map:
            parts.append(str(key) if key is not None else "?")
        else:
            parts.append(max(count - 1, 0))
    return format_path(parts)


def _walk(value: Any, path: tuple[str | int, ...]) -> None:
    """Raise `YAMLDocumentError` at the first value plain config cannot hold."""
    if isinstance(value, _Invalid):
        raise YAMLDocumentError(f"{format_path(path)}: {value.why}")
    if isinstance(value, float) and not math.isfinite(value):
        raise YAMLDocumentError(f"{format_path(path)}: {value} is not a finite number")
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, _Invalid):
                raise YAMLDocumentError(f"{format_path(path)}: a key: {key.why}")
            if not isinstance(key, str):
                raise YAMLDocumentError(
                    f"{format_path(path)}: key {str(key)[:40]!r} ({type(key).__name__}): "
                    "keys must be strings"
                )
            _walk(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _walk(item, (*path, index))


def read_yaml(source: str | bytes, limits: Limits = Limits()) -> Any:
    """The plain data (dicts with string keys, lists, str, int, finite float, bool, None) of
    one YAML (or JSON) document; `YAMLDocumentError` for anything else (see module docs)."""
    if len(source) > limits.max_bytes:
        raise YAMLDocumentError(f"{len(source)} bytes, more than {limits.max_bytes}")
    if isinstance(source, bytes):
        try:
            text = source.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise YAMLDocumentError(f"not UTF-8 (byte {exc.start})") from None
    else:
        text = source
    try:
        _check_events(text, limits)
        loader = _StrictLoader(text)
        try:
            data = loader.get_single_data()
        finally:
            loader.dispose()
    except RecursionError:
        raise YAMLDocumentError("nests too deeply") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise YAMLDocumentError(f"invalid YAML{where}: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise YAMLDocumentError(f"invalid YAML: {str(exc)[:200]}") from None
    _walk(data, ())
    return data
