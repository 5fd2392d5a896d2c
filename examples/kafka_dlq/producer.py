"""Publishes orders: ``python producer.py o-1 o-2-bad`` (an id ending in ``-bad`` is refused)."""

from __future__ import annotations

import os
import sys

from kafka import KafkaProducer
from topics import DLQ, ORDERS, ensure_topics

import tracectx

BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP", "127.0.0.1:9092")
tracectx.setup(
    "orders-api", spans_file=f"{os.environ.get('SPANS_DIR', 'spans')}/orders-api.otlp.jsonl"
)


def main(order_ids: list[str]) -> None:
    ensure_topics(BOOTSTRAP, ORDERS, DLQ)
    producer = KafkaProducer(bootstrap_servers=BOOTSTRAP)  # instrumented by setup()
    for order_id in order_ids:
        with tracectx.traced("POST /orders"):  # stands in for the HTTP request
            producer.send(ORDERS, key=order_id.encode(), value=b'{"total": 42}').get(10)
    producer.close()


if __name__ == "__main__":
    main(sys.argv[1:])
