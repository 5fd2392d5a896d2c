"""Errors raised through real spans, fed to an engine by the error-stream processor."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from tracectx import ErrorKind, new_error, traced
from tracectx.alerting import AlertEngine, ErrorStreamProcessor
from tracectx.testing import plugged


def raise_on(resource: str, kind: ErrorKind = ErrorKind.BUSINESS, **metadata: str) -> None:
    """One error born on a span named `resource` (the Sentinel example's shape by default)."""
    with contextlib.suppress(Exception), traced(resource):
        raise new_error(kind, "insufficient balance", code="E42", currency="CNY", **metadata)


@pytest.fixture
def received() -> list:
    return []


@pytest.fixture
def engine(received) -> Iterator[AlertEngine]:
    engine = AlertEngine(
        sinks={},
        default_actions=(received.append,),
        jaeger_template="http://localhost:16686/trace/{trace_id}",
    )
    with plugged(ErrorStreamProcessor([engine.observe])):
        yield engine
    engine.close()
