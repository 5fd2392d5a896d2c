"""hooks.instrument() patches through tracectx.patching.Patches: undone exactly, originals kept."""

from __future__ import annotations

import asyncio.futures
import concurrent.futures
import gc
import logging
import threading

import pytest

from tests.helpers import by_name, hex_trace
from tracectx import ErrorKind, new_error, traced
from tracectx.hooks import instrument, is_instrumented, uninstrument
from tracectx.patching import is_patched

PATCHED = [
    (threading.Thread, "start"),
    (threading.Thread, "_bootstrap_inner"),
    (concurrent.futures.ThreadPoolExecutor, "submit"),
    (concurrent.futures.ProcessPoolExecutor, "submit"),
    (asyncio.futures, "_convert_future_exc"),
]


@pytest.fixture
def instrumented():
    instrument()
    yield
    uninstrument()


def test_patches_keep_the_originals_name_docs_and_wrapped():
    before = {(owner, name): vars(owner)[name] for owner, name in PATCHED}
    instrument()
    instrument()  # idempotent: one layer
    try:
        assert is_instrumented()
        for owner, name in PATCHED:
            patched, original = vars(owner)[name], before[(owner, name)]
            assert is_patched(owner, name)
            assert patched.__wrapped__ is original
            assert (patched.__name__, patched.__doc__) == (original.__name__, original.__doc__)
    finally:
        uninstrument()
    uninstrument()  # a second undo changes nothing
    assert not is_instrumented()
    for owner, name in PATCHED:
        assert vars(owner)[name] is before[(owner, name)]
        assert not is_patched(owner, name)


def test_the_excepthook_set_before_comes_back():
    previous = threading.excepthook
    instrument()
    assert threading.excepthook is not previous
    uninstrument()
    assert threading.excepthook is previous


def test_plain_pool_futures_watch_only_failures(instrumented, spans, caplog):
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        ok = pool.submit(lambda: 1)
        assert ok.result() == 1
        assert type(ok) is concurrent.futures.Future

        def work():
            raise new_error(ErrorKind.BUSINESS, "plain pool, unread")

        with traced("request"):
            failed = pool.submit(work)
            concurrent.futures.wait([failed])
    with caplog.at_level(logging.DEBUG, logger="tracectx.unobserved"):
        del failed
        gc.collect()
    [line] = [r for r in caplog.records if "plain pool, unread" in r.getMessage()]
    assert hex_trace(by_name(spans, "request")) in line.getMessage()


def test_a_context_pool_under_instrument_wraps_work_once(instrumented, spans):
    """The patched submit sees ContextThreadPoolExecutor's work as carried already."""
    from tracectx.executors import ContextThreadPoolExecutor

    def work():
        raise ValueError("once")

    with ContextThreadPoolExecutor(1) as pool, traced("request"):
        with pytest.raises(ValueError):
            pool.submit(work).result()
    failures = [s for s in spans.get_finished_spans() if s.name.endswith("<locals>.work")]
    assert len(failures) == 1
