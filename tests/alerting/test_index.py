"""Rules are looked up by kind and resource: the index finds exactly the rules a full scan would,
in rule order, and an engine with 100 rules checks only the ones that may count an event."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.alerting.rules import sentinel_rule
from tests.alerting.test_engine import event
from tracectx.alerting import AlertEngine, Rule
from tracectx.alerting.events import ErrorEvent
from tracectx.alerting.index import RuleIndex

RESOURCES = ["payment", "refund", "POST /pay", "POST /pay/{id}", "orders", "p[ay", ""]
PATTERNS = [*RESOURCES[:-1], "*", "pay*", "POST /pay*", "p?yment", "[pr]efund", "*/{id}"]
KINDS = ["BUSINESS", "TRANSIENT", "FATAL", "UNKNOWN", "NOT_A_KIND"]


@st.composite
def rules(draw) -> Rule:
    name = draw(st.text(min_size=1, max_size=5))
    resource = draw(st.sampled_from(PATTERNS))
    if draw(st.booleans()):
        weights = draw(st.dictionaries(st.sampled_from(KINDS[:4]), st.floats(0, 5), min_size=1))
        return Rule(name=name, resource=resource, error_weights=weights, base_threshold=1)
    kinds = draw(st.lists(st.sampled_from(KINDS[:4]), max_size=2))
    return Rule(name=name, resource=resource, kinds=kinds, threshold=1)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(rules(), max_size=30),
    st.sampled_from(KINDS),
    st.lists(st.sampled_from(RESOURCES), min_size=1, max_size=3).map(tuple),
)
def test_index_finds_what_a_scan_finds_in_rule_order(rule_list, kind, resources):
    ev = ErrorEvent("e", kind, "", "", "origin", resources, "a" * 32, "b" * 16, 0.0)
    scan = [r for r in rule_list if r.accepts(ev) is not None]
    index = RuleIndex(rule_list)
    assert [id(r) for r in index.candidates(kind, resources)] == [id(r) for r in scan]
    assert [id(r) for r in index.candidates(kind, resources)] == [id(r) for r in scan]  # cached


def test_hundred_rules_one_matching_checks_one(monkeypatch):
    received: list = []
    others = [sentinel_rule(name=f"r{i}", resource=f"resource-{i}") for i in range(99)]
    engine = AlertEngine([*others, sentinel_rule(actions=[received.append], threshold=2)])
    checked: list[str] = []
    accepts = Rule.accepts
    monkeypatch.setattr(
        Rule, "accepts", lambda self, e: checked.append(self.name) or accepts(self, e)
    )
    for i in range(3):
        engine.observe(event(f"{i}", ts=100.0, account_id="acc_1"))
    # was: all 100 rules, for every event; then the matching one for every event; now once,
    # the plan being cached per (kind, resources)
    assert checked == ["payment-business-burst"]
    assert len(received) == 1


def test_rules_changed_in_place_are_seen():
    received: list = []
    engine = AlertEngine()
    engine.observe(event("0", ts=100.0, account_id="acc_1"))
    engine.rules.append(sentinel_rule(actions=[received.append], threshold=0))
    engine.observe(event("1", ts=100.0, account_id="acc_1"))
    assert len(received) == 1
    engine.add_rule(sentinel_rule(actions=[received.append], threshold=0, resource="refund"))
    engine.observe(event("2", ts=100.0, account_id="acc_2"))  # replaced: payment no longer
    assert len(received) == 1


def test_cached_plans_are_bounded_across_kinds():
    """Kinds and resources both come from span data: the plans cached for them are bounded in
    all, not per kind (per kind, 1024 kinds x 4096 plans could hold millions)."""
    from tracectx.alerting import index as index_module

    index = RuleIndex([sentinel_rule()])
    for i in range(3 * index_module.MAX_PLANS):
        index.plan(event(f"{i:032x}", kind=f"K{i % 900}", resource=f"r{i}"))
        if i % 997 == 0:
            total = sum(len(entry.plans) for entry in index._kinds.values())
            assert total <= index_module.MAX_PLANS
