"""`fewer_collections`: the bulk commands' GC settings while they run, and the caller's after."""

from __future__ import annotations

import gc

from tracectx.viz.collector import GEN0_THRESHOLD, fewer_collections


def test_the_threshold_is_raised_and_start_up_frozen_then_both_restored() -> None:
    before = gc.get_threshold()
    assert gc.get_freeze_count() == 0
    with fewer_collections():
        assert gc.get_threshold()[0] == GEN0_THRESHOLD
        assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_what_an_embedding_program_froze_stays_frozen() -> None:
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        with fewer_collections():
            pass
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()
