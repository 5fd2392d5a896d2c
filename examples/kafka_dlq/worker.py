"""Ships orders; one it cannot ship goes to ``orders.dlq`` with its error's identity.

``python worker.py 2`` handles two records, then exits.
"""

from __future__ import annotations

import os
import sys

from kafka import KafkaConsumer, KafkaProducer
from topics import DLQ, ORDERS, ensure_topics

import tracectx
from tracectx import ErrorKind, new_error
from tracectx_kafka import send_to_dlq

BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP", "127.0.0.1:9092")
tracectx.setup("shipping", spans_file=f"{os.environ.get('SPANS_DIR', 'spans')}/shipping.otlp.jsonl")


@tracectx.traced  # a span of its own: the error's origin
def ship(order_id: str) -> None:
    if order_id.endswith("-bad"):
        raise new_error(
            ErrorKind.BUSINESS, "address not deliverable", code="E_ADDRESS", order_id=order_id
        )


def main(count: int) -> None:
    ensure_topics(BOOTSTRAP, ORDERS, DLQ)
    producer = KafkaProducer(bootstrap_servers=BOOTSTRAP)
    consumer = KafkaConsumer(
        ORDERS,
        bootstrap_servers=BOOTSTRAP,
        group_id="shipping",
        auto_offset_reset="earliest",
        session_timeout_ms=6000,  # joins (and a dead member's partitions move) in seconds
        heartbeat_interval_ms=1000,
    )
    for handled, record in enumerate(consumer, 1):  # each record: a `process orders` span
        try:
            ship(record.key.decode())
        except Exception as exc:
            send_to_dlq(producer, record, exc).get(10)  # to orders.dlq, error id in a header
        if handled == count:
            break
    consumer.close()
    producer.close()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
