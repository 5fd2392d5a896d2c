"""Reads ``orders.dlq``: each dead-lettered error is absorbed here, with its original id.

``python dlq.py 1`` handles one record, then exits.
"""

from __future__ import annotations

import logging
import os
import sys

from kafka import KafkaConsumer
from topics import DLQ, ORDERS, ensure_topics

import tracectx
from tracectx_kafka import dlq_error

BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP", "127.0.0.1:9092")
tracectx.setup("support", spans_file=f"{os.environ.get('SPANS_DIR', 'spans')}/support.otlp.jsonl")
log = logging.getLogger("support")


def main(count: int) -> None:
    ensure_topics(BOOTSTRAP, ORDERS, DLQ)
    consumer = KafkaConsumer(
        DLQ,
        bootstrap_servers=BOOTSTRAP,
        group_id="support",
        auto_offset_reset="earliest",
        session_timeout_ms=6000,  # joins (and a dead member's partitions move) in seconds
        heartbeat_interval_ms=1000,
    )
    for handled, record in enumerate(consumer, 1):  # the `process orders.dlq` span absorbs it
        error = dlq_error(record)  # kind, code, metadata and error id, as the worker raised it
        log.warning(
            "ticket for %s: %s (error_id=%s)", record.key.decode(), error, error and error.error_id
        )
        if handled == count:
            break
    consumer.close()


if __name__ == "__main__":
    logging.basicConfig(format="%(levelname)s %(name)s trace=%(trace_id)s %(message)s")
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
