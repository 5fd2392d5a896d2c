"""Read the ``tracectx.propagation.rejected`` counter from the real metrics SDK."""

from __future__ import annotations

from collections import Counter

from tracectx.metrics import REJECTED_COUNTER
from tracectx.testing import install_test_meter_provider


def rejected() -> Counter[tuple[str, str]]:
    """Cumulative refusals so far, by (messaging.system, reason)."""
    data = install_test_meter_provider().get_metrics_data()
    counts: Counter[tuple[str, str]] = Counter()
    for rm in data.resource_metrics if data else []:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                if metric.name == REJECTED_COUNTER:
                    for point in metric.data.data_points:
                        attrs = point.attributes
                        counts[(attrs["messaging.system"], attrs["reason"])] += point.value
    return counts


class Rejections:
    """``with Rejections() as r: ...; r.delta`` — what was refused inside the block."""

    def __enter__(self) -> Rejections:
        self.before = rejected()
        self.delta: Counter[tuple[str, str]] = Counter()
        return self

    def __exit__(self, *exc: object) -> None:
        after = rejected()
        self.delta = Counter({k: v - self.before.get(k, 0) for k, v in after.items()})
        self.delta = +self.delta  # drop zeros
