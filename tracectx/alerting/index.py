"""Rules indexed by what they match, so an event is checked against the rules that may count it
instead of every rule: by kind (a rule's kinds or weights, looked up once per kind), then by
resource (rules naming an exact resource sit in a dict; only glob rules are tried in turn).
`plan` caches the answer with each rule's weight per (kind, resources), so a stream of events
from the same few places costs one lookup each."""

from __future__ import annotations

from collections.abc import Iterable

from tracectx.alerting.events import ErrorEvent
from tracectx.alerting.rules import Rule

__all__ = ["Plan", "RuleIndex"]

_GLOB = frozenset("*?[")
MAX_KINDS = 1024  # event kinds remembered; beyond, the cache starts over (kinds are few)
MAX_PLANS = 16384  # (kind, resources) plans remembered in all; beyond, every plan starts over
Plan = tuple[tuple[Rule, float], ...]  # the rules counting an event, in order, with its weight


class _ForKind:
    __slots__ = ("exact", "globs", "plans")

    def __init__(self, rules: Iterable[tuple[int, Rule]]) -> None:
        self.exact: dict[str, list[tuple[int, Rule]]] = {}
        self.globs: list[tuple[int, Rule]] = []
        self.plans: dict[tuple[str, ...], Plan] = {}
        for pos, rule in rules:
            if _GLOB.isdisjoint(rule.resource):
                self.exact.setdefault(rule.resource, []).append((pos, rule))
            else:
                self.globs.append((pos, rule))


class RuleIndex:
    """The rules of an engine, in order, with ``candidates(kind, resources)``: the rules that
    count an error of `kind` on one of `resources`, in rule order."""

    def __init__(self, rules: Iterable[Rule] = ()) -> None:
        self.rules: tuple[Rule, ...] = tuple(rules)
        self._kinds: dict[str, _ForKind] = {}
        self._plans = 0  # plans cached across every kind: both come from span data

    def _for_kind(self, kind: str) -> _ForKind:
        entry = self._kinds.get(kind)
        if entry is None:
            if len(self._kinds) >= MAX_KINDS:
                self._kinds.clear()
                self._plans = 0
            weighs = ((pos, r) for pos, r in enumerate(self.rules) if r.weight(kind) is not None)
            entry = self._kinds[kind] = _ForKind(weighs)
        return entry

    def plan(self, event: ErrorEvent) -> Plan:
        """The rules that count `event`, in rule order, each with the weight it adds
        (``rule.accepts``); cached per (kind, resources) until `forget_kinds`."""
        entry = self._kinds.get(event.kind)
        found = None if entry is None else entry.plans.get(event.resources)
        if found is None:
            if self._plans >= MAX_PLANS:
                for cached in self._kinds.values():
                    cached.plans.clear()
                self._plans = 0
            entry = entry or self._for_kind(event.kind)
            rules = self.candidates(event.kind, event.resources)
            weighed = ((rule, rule.accepts(event)) for rule in rules)
            found = tuple((rule, w) for rule, w in weighed if w is not None)
            entry.plans[event.resources] = found
            self._plans += 1
        return found

    def candidates(self, kind: str, resources: tuple[str, ...]) -> list[Rule]:
        entry = self._for_kind(kind)
        found: dict[int, Rule] = {}
        for name in resources:
            for pos, rule in entry.exact.get(name, ()):
                found[pos] = rule
        for pos, rule in entry.globs:
            if rule.matches_resource(resources):
                found[pos] = rule
        return [found[pos] for pos in sorted(found)] if len(found) > 1 else [*found.values()]

    def forget_kinds(self) -> None:
        """Look kinds up again (a kind may have been registered since)."""
        self._kinds.clear()
