"""A trace's error paths do not depend on the order its spans arrived in.

After a rebalance the new owner re-assembles a trace from re-keyed records that may arrive in
another order; its path records carry the same keys and must carry the same content."""

from __future__ import annotations

import random

from tests.viz.generator import generate
from tracectx.viz.analysis import analyse
from tracectx.viz.model import SpanSet
from tracectx_stream.paths import path_records
from tracectx_stream.worker import canonical_order


def _records(spans):  # type: ignore[no-untyped-def]
    return [r for a in analyse(SpanSet(canonical_order(spans))) for r in path_records(a)]


def test_path_records_are_the_same_whatever_the_arrival_order() -> None:
    rng = random.Random(5)
    for variant in ("plain", "tracectx"):
        for generated in generate(40, 11, variant):  # type: ignore[arg-type]
            expected = _records(generated.spans)
            for _ in range(3):
                shuffled = list(generated.spans)
                rng.shuffle(shuffled)
                assert _records(shuffled) == expected
