"""A real prometheus-alertmanager and redis-server for the alerting tests."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from tracectx_demo.embedded import Service, alertmanager, redis_server


class AM:
    def __init__(self, service: Service) -> None:
        self.service = service
        self.url = f"http://{service.address}"

    def alerts(self) -> list[dict]:
        return httpx.get(self.url + "/api/v2/alerts", timeout=5).json()

    def wait_for(self, predicate, timeout: float = 15.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        found: list[dict] = []
        while time.monotonic() < deadline:
            try:
                found = [a for a in self.alerts() if predicate(a)]
            except httpx.HTTPError:
                found = []
            if found:
                return found
            time.sleep(0.1)
        return found


@pytest.fixture
def am() -> Iterator[AM]:
    service = alertmanager().start()
    yield AM(service)
    service.stop()


@pytest.fixture(scope="session")
def redis() -> Iterator[Service]:
    service = redis_server().start()
    yield service
    service.stop()
