"""The design notes' Sentinel rule, shared by the alerting tests."""

from __future__ import annotations

from typing import Any

from tracectx.alerting import Rule


def sentinel_rule(**overrides: Any) -> Rule:
    """More than 10 BUSINESS errors for the same account_id on resource payment within 300 s."""
    fields: dict[str, Any] = dict(
        name="payment-business-burst",
        resource="payment",
        kinds=["BUSINESS"],
        threshold=10,
        window=300,
        group_by=["account_id"],
        cooldown=300,
        actions=["am"],
    )
    fields.update(overrides)
    return Rule(**fields)
