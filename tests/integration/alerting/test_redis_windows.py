"""Redis windows against a real redis-server: every key they write expires, a read never
creates a key or shortens a TTL, and the engine's group cap holds for Redis windows too."""

from __future__ import annotations

import uuid

import pytest
import redis as redis_client

from tests.alerting.rules import sentinel_rule
from tests.alerting.test_engine import event
from tracectx.alerting import AlertEngine, RedisWindows

pytestmark = pytest.mark.integration


@pytest.fixture
def store(redis):
    url = f"redis://{redis.address}/{1 + uuid.uuid4().int % 14}"
    prefix = f"t{uuid.uuid4().hex[:8]}:"
    client = redis_client.Redis.from_url(url)
    yield RedisWindows(url, prefix=prefix), client, prefix
    for key in client.scan_iter(match=prefix + "*"):
        client.delete(key)
    client.close()


def ttls(client, prefix: str) -> dict[str, int]:
    return {k.decode(): client.ttl(k) for k in client.scan_iter(match=prefix + "*")}


def test_every_key_written_expires(store):
    windows, client, prefix = store
    assert windows.add("count", "e1", 1000.0, 300.0) == 1
    assert windows.add_score("score", "e1", 1000.0, 2.0, 0.95, 600.0) == pytest.approx(2.0)
    assert windows.claim("c", 60.0)
    found = ttls(client, prefix)
    assert set(found) == {prefix + k for k in ("count", "score", "score:ids", "claim:c")}
    assert all(ttl > 0 for ttl in found.values()), found  # -1 would mean "kept for ever"


def test_reading_a_score_creates_nothing(store):
    windows, client, prefix = store
    assert windows.score("never-added", 1000.0, 0.95) == 0.0
    assert ttls(client, prefix) == {}  # the old script wrote a hash with s=0 on every read


def test_reading_a_score_keeps_its_ttl(store):
    windows, client, prefix = store
    month = 30 * 86400
    windows.add_score("score", "e1", 1000.0, 2.0, 0.95, float(month))
    windows.score("score", 1060.0, 0.95)
    assert client.ttl(prefix + "score") > month - 60  # the old read cut it to an hour


def test_a_score_key_left_without_ttl_gets_one_on_read(store):
    windows, client, prefix = store
    client.hset(prefix + "score", mapping={"s": "3", "t": "1000"})  # e.g. written by hand
    assert windows.score("score", 1000.0, 1.0) == pytest.approx(3.0)
    assert 0 < client.ttl(prefix + "score") <= 3600


def test_group_cap_holds_with_redis_windows(store):
    windows, client, prefix = store
    received: list = []
    engine = AlertEngine(
        [sentinel_rule(actions=[received.append], threshold=0)], windows=windows, max_groups=5
    )
    for i in range(20):
        engine.observe(event(f"{i:016x}", ts=1000.0, account_id=f"acc_{i}"))
    assert len(received) == 5
    counted = [
        k for k in ttls(client, prefix) if not k.startswith((prefix + "claim:", prefix + "firing"))
    ]
    assert len(counted) == 5  # the other 15 accounts wrote nothing to Redis
    held = [k for k in ttls(client, prefix) if k.startswith(prefix + "firing:")]
    assert len(held) == 5  # the 5 firing alerts, kept for another engine to adopt
