"""One error, one id across executor hops awaited from asyncio.

asyncio replaces a worker's ``TimeoutError`` with a fresh one on its way to the awaiting
coroutine (``asyncio.futures._convert_future_exc``; since 3.11 it is the same class, so the copy
only loses identity): the caller saw a new error id, a second origin and no metadata.
"""

from __future__ import annotations

import asyncio
import concurrent.futures

import pytest

from tests.helpers import all_named, by_name, hex_span
from tracectx import ErrorKind, bind, classify, error_id, traced
from tracectx import semconv as sc
from tracectx.aio import run_in_executor
from tracectx.envelope import to_dict
from tracectx.hooks import instrument, uninstrument
from tracectx.viz.analysis import analyse
from tracectx.viz.sources.memory import from_readable_spans


def reserve() -> None:
    bind(sku="sku-9")
    with traced("inventory.reserve"):
        raise TimeoutError("inventory timed out")


async def via_loop(fn):
    return await asyncio.get_running_loop().run_in_executor(None, fn)


async def via_to_thread(fn):
    return await asyncio.to_thread(fn)


async def via_tracectx(fn):
    return await run_in_executor(None, fn)


PATHS = {"loop.run_in_executor": via_loop, "asyncio.to_thread": via_to_thread}
PATHS["tracectx.aio.run_in_executor"] = via_tracectx


@pytest.fixture
def instrumented():
    instrument()
    yield
    uninstrument()


@pytest.mark.parametrize("path", list(PATHS))
async def test_caller_sees_the_workers_error(path, spans, instrumented):
    with pytest.raises(TimeoutError) as info, traced("checkout"):
        await PATHS[path](reserve)
    err = info.value
    origin = by_name(spans, "inventory.reserve")
    assert error_id(err) == origin.attributes[sc.ATTR_ID]
    assert classify(err) is ErrorKind.TRANSIENT
    assert to_dict(err)["metadata"] == {"sku": "sku-9"}
    checkout = by_name(spans, "checkout")
    assert checkout.attributes[sc.ATTR_ROLE] == "propagated"
    assert checkout.attributes[sc.ATTR_ORIGIN_SPAN_ID] == hex_span(origin)
    [analysis] = analyse(from_readable_spans(spans.get_finished_spans()))
    [path_of_error] = analysis.errors
    assert path_of_error.origin == hex_span(origin)
    assert path_of_error.error_id == error_id(err)


async def test_tracectx_run_in_executor_keeps_identity_without_instrument(spans):
    with pytest.raises(TimeoutError) as info, traced("checkout"):
        await run_in_executor(None, reserve)
    assert error_id(info.value) == by_name(spans, "inventory.reserve").attributes[sc.ATTR_ID]
    assert [s.attributes[sc.ATTR_ROLE] for s in all_named(spans, "checkout")] == ["propagated"]


async def test_other_converted_errors_keep_their_identity(instrumented):
    """Where asyncio must change the class (the concurrent InvalidStateError), the new one
    carries the worker's id and traceback."""
    raised = []

    def worker():
        exc = concurrent.futures.InvalidStateError("not now")
        raised.append(exc)
        raise exc

    with pytest.raises(asyncio.InvalidStateError) as info:
        await via_loop(worker)
    assert error_id(info.value) == error_id(raised[0])
    assert info.value.__traceback__ is not None


def test_uninstrument_puts_asyncio_back():
    import asyncio.futures

    before = asyncio.futures._convert_future_exc
    instrument()
    assert asyncio.futures._convert_future_exc is not before
    uninstrument()
    assert asyncio.futures._convert_future_exc is before
