"""Sentinel-style alert rules: where, which kinds, how many in what window, grouped by what.

Two ways to fire:

- **count**: more than ``threshold`` errors within ``window`` seconds — "more than 10 BUSINESS
  errors for the same ``account_id`` on resource ``payment`` within 300 s";
- **weighted**: each error adds its kind's weight (``error_weights``; a custom kind falls back to
  its base kind's weight) to a score that decays by ``decay_factor`` per minute; the rule fires
  when the score exceeds ``base_threshold``.

A rule counts an error id once, however many spans it crossed.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import hashlib
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from tracectx.alerting.alerts import MAX_SAMPLES
from tracectx.alerting.events import ErrorEvent
from tracectx.kinds import KindError, get_kind

__all__ = ["KEY_SEP", "Rule", "RuleError"]

Action = str | Callable[..., Any]
MAX_GROUP_VALUE = 128
MAX_CACHED = 10_000  # kinds / resource names a rule remembers its answer for
KEY_SEP = "\x1f"  # joins a rule's name and its group values into a window key
_MISSING = object()


class RuleError(ValueError):
    """A rule is not usable; the message names the rule and the field."""


def _tuple(value: Iterable[Any] | str | None) -> tuple[Any, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(value)


@dataclasses.dataclass(frozen=True)
class Rule:
    """One alert rule (see module docs). ``actions`` name sinks of the engine, or are callables.

    Sequences (``kinds``, ``group_by``, ``actions``) are stored as tuples.
    """

    name: str
    resource: str = "*"
    kinds: Sequence[str] = ()
    window: float = 60.0
    threshold: float | None = None
    group_by: Sequence[str] = ()
    cooldown: float = 300.0
    actions: Sequence[Action] = ()
    error_weights: Mapping[str, float] = dataclasses.field(default_factory=dict)
    base_threshold: float | None = None
    decay_factor: float = 1.0
    _matches: dict[str, bool] = dataclasses.field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    _weights: dict[str, float | None] = dataclasses.field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    weighted: bool = dataclasses.field(default=False, init=False, repr=False, compare=False)
    ttl: float = dataclasses.field(default=0.0, init=False, repr=False, compare=False)
    _prefix: str = dataclasses.field(default="", init=False, repr=False, compare=False)
    limit: float = dataclasses.field(default=0.0, init=False, repr=False, compare=False)
    sample_above: float = dataclasses.field(default=0.0, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "kinds", tuple(k.upper() for k in _tuple(self.kinds)))
        set_(self, "group_by", _tuple(self.group_by))
        set_(self, "actions", _tuple(self.actions))
        set_(self, "error_weights", {k.upper(): float(v) for k, v in self.error_weights.items()})
        set_(self, "weighted", bool(self.error_weights))
        # how long a group is tracked after its last error: a score outlives its window so a
        # decaying score is still there to decay; a count window ends with the window
        ttl = max(self.window, self.cooldown, 600.0) if self.weighted else self.window
        set_(self, "ttl", ttl)
        set_(self, "_prefix", self.name + KEY_SEP)
        # what a window's value must exceed to fire
        set_(self, "limit", (self.base_threshold if self.weighted else self.threshold) or 0.0)
        set_(self, "sample_above", self._sample_above())
        where = f"rule {self.name!r}"
        if not self.name:
            raise RuleError("a rule needs a name")
        if self.weighted == (self.threshold is not None):
            raise RuleError(
                f"{where}: give either threshold (count rule) or error_weights and "
                "base_threshold (weighted rule)"
            )
        if self.weighted and self.base_threshold is None:
            raise RuleError(f"{where}: error_weights need a base_threshold")
        numbers = {
            "window": self.window,
            "threshold": self.threshold,
            "cooldown": self.cooldown,
            "base_threshold": self.base_threshold,
            "decay_factor": self.decay_factor,
            **{f"error_weights.{k}": v for k, v in self.error_weights.items()},
        }
        for field, value in numbers.items():
            if value is not None and not math.isfinite(value):
                raise RuleError(f"{where}: {field} must be a finite number, got {value}")
        if self.window <= 0 or self.cooldown < 0:
            raise RuleError(f"{where}: window must be > 0 and cooldown >= 0 seconds")
        if not 0 < self.decay_factor <= 1:
            raise RuleError(f"{where}: decay_factor must be in (0, 1], got {self.decay_factor}")
        for kind in (*self.kinds, *self.error_weights):
            try:
                get_kind(kind)
            except KindError:
                raise RuleError(f"{where}: unknown error kind {kind!r}") from None

    def _sample_above(self) -> float:
        """The window value above which an error may be among the last `MAX_SAMPLES` before
        the threshold is crossed. With one writer per window (one process; the stream's key
        owner) a counted error adds at most 1 (a count) or the largest weight (a score, which
        only decays otherwise), so the values of the last errors before a crossing are above
        ``threshold - MAX_SAMPLES * step``: errors further below need not be kept."""
        if not self.weighted:
            return self.limit - MAX_SAMPLES
        weights = self.error_weights.values()
        if min(weights) < 0:  # a score may fall: keep every sample
            return -math.inf
        return self.limit - MAX_SAMPLES * max(weights)

    def weight(self, kind: str) -> float | None:
        """What an error of `kind` adds (1 for count rules); None if the rule ignores it."""
        cached = self._weights.get(kind, _MISSING)
        if cached is not _MISSING:
            return cached  # type: ignore[return-value]
        result: float | None
        try:
            found = get_kind(kind)
        except KindError:
            found = None
        names = (kind,) if found is None else (found.name, found.base.name)
        if self.weighted:
            result = next((self.error_weights[n] for n in names if n in self.error_weights), None)
        else:
            result = 1.0 if not self.kinds or any(n in self.kinds for n in names) else None
        if len(self._weights) >= MAX_CACHED:  # kinds come from error data: keep this bounded
            self._weights.clear()
        self._weights[kind] = result
        return result

    def matches_resource(self, resources: tuple[str, ...]) -> bool:
        for name in resources:
            hit = self._matches.get(name)
            if hit is None:
                hit = fnmatch.fnmatchcase(name, self.resource)
                if len(self._matches) < MAX_CACHED:
                    self._matches[name] = hit
            if hit:
                return True
        return False

    def group(self, metadata: Mapping[str, Any]) -> tuple[str, ...] | None:
        """The values of ``group_by`` in `metadata`; None if one is missing. A value longer
        than `MAX_GROUP_VALUE` becomes its start plus a digest of the whole: still one group
        per value, but window keys (in memory or Redis) and labels stay small."""
        values = []
        for key in self.group_by:
            value = metadata.get(key)
            if value is None:
                return None
            text = str(value)
            if len(text) > MAX_GROUP_VALUE:
                digest = hashlib.blake2b(text.encode("utf-8", "replace"), digest_size=8)
                text = f"{text[: MAX_GROUP_VALUE - 20]}…#{digest.hexdigest()}"
            values.append(text)
        return tuple(values)

    def group_key(self, metadata: Mapping[str, Any]) -> str | None:
        """The window key of `metadata`'s group: the name and the `group` values joined by
        `KEY_SEP`; None if a value is missing. One concatenation for one ``group_by`` key."""
        group_by = self.group_by
        if len(group_by) == 1:
            value = metadata.get(group_by[0])
            if value is None:
                return None
            text = value if type(value) is str else str(value)
            if len(text) <= MAX_GROUP_VALUE:
                return self._prefix + text
        group = self.group(metadata)
        return None if group is None else KEY_SEP.join((self.name, *group))

    def accepts(self, event: ErrorEvent) -> float | None:
        """The weight `event` adds to this rule, or None if the rule does not count it."""
        weight = self.weight(event.kind)
        if weight is None or not self.matches_resource(event.resources):
            return None
        return weight
