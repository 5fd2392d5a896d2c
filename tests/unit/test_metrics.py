"""Error counters by kind/resource/type and the breaker state gauge, on the real metrics SDK."""

from __future__ import annotations

import contextlib

import pytest

from tracectx import CircuitBreaker, ErrorKind, new_error, traced
from tracectx.alerting import ErrorStreamProcessor, count_errors
from tracectx.testing import install_test_meter_provider, plugged


@pytest.fixture(scope="module")
def reader():
    return install_test_meter_provider()


def points(reader, name: str) -> list:
    data = reader.get_metrics_data()
    found = []
    for rm in data.resource_metrics if data else []:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                if metric.name == name:
                    found.extend(metric.data.data_points)
    return found


def test_errors_counted_once_where_born(reader):
    with plugged(ErrorStreamProcessor([count_errors])):
        for _ in range(3):
            with contextlib.suppress(Exception), traced("POST /pay"), traced("charge"):
                raise new_error(ErrorKind.BUSINESS, "declined")
    counts = {
        (p.attributes["error.kind"], p.attributes["tracectx.resource"]): p.value
        for p in points(reader, "tracectx.errors")
    }
    assert counts[("BUSINESS", "charge")] == 3  # origin only: not again on POST /pay
    assert ("BUSINESS", "POST /pay") not in counts


def test_breaker_state_gauge(reader):
    breaker = CircuitBreaker("gauge-db", fail_max=1)
    with contextlib.suppress(TimeoutError):
        breaker.call(lambda: (_ for _ in ()).throw(TimeoutError()))
    states = {p.attributes["breaker"]: p.value for p in points(reader, "tracectx.breaker.state")}
    assert states["gauge-db"] == 2
