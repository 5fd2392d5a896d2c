"""Create the example's topics if they are not there (most brokers do not auto-create them)."""

from __future__ import annotations

from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError

ORDERS = "orders"
DLQ = f"{ORDERS}.dlq"  # send_to_dlq's default dead-letter topic: <topic>.dlq


def ensure_topics(bootstrap: str, *names: str) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        for name in names:
            try:
                admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1)])
            except TopicAlreadyExistsError:
                pass
    finally:
        admin.close()
