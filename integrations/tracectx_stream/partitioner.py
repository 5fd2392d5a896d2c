"""Kafka's key partitioning (murmur2, as the Java client and kafka-python's default do), faster.

Every record the stream produces is keyed (a path by its key, a re-keyed batch by its trace id,
an alert event by its account), and kafka-python hashes each key byte by byte in Python: 14 µs
for a 49-byte path key, 3 % of an instance's CPU. Here the key is read four bytes at a time
with `struct` (7 µs) for the same hash, so a record lands on the partition any other Kafka
client would choose (a compacted paths topic, and instances of two versions during an upgrade,
need every writer of a key to agree).
"""

from __future__ import annotations

import functools
import struct
from typing import Any

from kafka.partitioner import DefaultPartitioner

__all__ = ["KeyPartitioner", "murmur2"]

_M = 0x5BD1E995
_MASK = 0xFFFFFFFF


@functools.lru_cache(maxsize=64)
def _words(count: int) -> Any:
    return struct.Struct(f"<{count}I").unpack_from


def murmur2(data: bytes) -> int:
    """MurmurHash2 of `data` with Kafka's seed, as ``org.apache.kafka.common.utils.Utils``."""
    length = len(data)
    h = 0x9747B28C ^ length
    for k in _words(length >> 2)(data):
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ (((k ^ (k >> 24)) * _M) & _MASK)
    tail, extra = length & ~3, length & 3
    if extra >= 3:
        h ^= data[tail + 2] << 16
    if extra >= 2:
        h ^= data[tail + 1] << 8
    if extra:
        h = ((h ^ data[tail]) * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    return h ^ (h >> 15)


class KeyPartitioner(DefaultPartitioner):  # type: ignore[misc]  # kafka-python is untyped
    """kafka-python's default partitioner with `murmur2` for keyed records (unkeyed ones, which
    the stream never sends, are left to the default)."""

    def partition(
        self,
        topic: str,
        key: Any,
        serialized_key: bytes | None,
        value: Any,
        serialized_value: bytes | None,
        cluster: Any,
    ) -> int:
        if serialized_key is not None and (partitions := cluster.partitions_for_topic(topic)):
            ordered: list[int] = sorted(partitions)
            return ordered[(murmur2(serialized_key) & 0x7FFFFFFF) % len(ordered)]
        # no key, or a topic the metadata does not know: the default decides (and complains)
        return super().partition(  # type: ignore[no-any-return]
            topic, key, serialized_key, value, serialized_value, cluster
        )
