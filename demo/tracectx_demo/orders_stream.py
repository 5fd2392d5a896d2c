"""The Kafka leg: ``orders`` records consumed by a shipping handler that fails with an injected
fault and dead-letters the record; a DLQ consumer picks the story up."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError

from tracectx import ErrorKind, new_error, traced
from tracectx_demo.embedded import tansu_broker
from tracectx_kafka import TracedConsumer, TracedProducer, send_to_dlq

__all__ = ["ORDERS", "OrdersStream", "kafka_broker"]

ORDERS = "orders"
DLQ = "orders.dlq"


@contextlib.contextmanager
def kafka_broker(bootstrap_servers: str | None) -> Iterator[str]:
    """`bootstrap_servers`, or an embedded tansu broker for the block."""
    if bootstrap_servers:
        yield bootstrap_servers
        return
    with tansu_broker() as broker:
        yield broker.address


class OrdersStream:
    """Producer for the request path; consumer threads for the orders topic and its DLQ."""

    def __init__(self, bootstrap: str) -> None:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        for topic in (ORDERS, DLQ):
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
        admin.close()
        self.bootstrap = bootstrap
        self.producer = TracedProducer(bootstrap_servers=bootstrap)
        self.dead_lettered = threading.Event()
        self.recovered = threading.Event()
        self._threads = [
            threading.Thread(target=self._ship, name="shipping-consumer", daemon=True),
            threading.Thread(target=self._read_dlq, name="dlq-consumer", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _consumer(self, topic: str) -> TracedConsumer:
        return TracedConsumer(
            topic,
            bootstrap_servers=self.bootstrap,
            group_id=f"demo-{topic}",
            auto_offset_reset="earliest",
            consumer_timeout_ms=20_000,
            max_poll_interval_ms=3000,
            session_timeout_ms=6000,
            heartbeat_interval_ms=1000,
        )

    def _ship(self) -> None:
        consumer = self._consumer(ORDERS)
        for record in consumer:
            try:
                with traced("shipping.plan"):
                    raise new_error(
                        ErrorKind.BUSINESS,
                        "address not deliverable",
                        code="E_ADDRESS",
                        order_id=record.key.decode(),
                    )
            except Exception as exc:
                send_to_dlq(self.producer, record, exc).get(10)
                self.dead_lettered.set()
                break
        consumer.close()

    def _read_dlq(self) -> None:
        consumer = self._consumer(DLQ)
        for _record in consumer:
            with traced("support.ticket"):
                pass
            self.recovered.set()
            break
        consumer.close()

    def publish(self, order_id: str) -> None:
        self.producer.send(ORDERS, key=order_id.encode(), value=b'{"total": 42}').get(10)

    def wait(self, timeout: float = 30.0) -> bool:
        done = self.dead_lettered.wait(timeout) and self.recovered.wait(timeout)
        for thread in self._threads:
            thread.join(5)
        self.producer.close()
        return done
