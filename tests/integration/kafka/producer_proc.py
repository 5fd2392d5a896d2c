"""Run as a separate process: produce N records, each in its own trace; print the trace ids."""

from __future__ import annotations

import sys

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from tracectx import bound, traced
from tracectx_kafka import TracedProducer


def main(bootstrap: str, topic: str, count: int) -> None:
    trace.set_tracer_provider(TracerProvider())
    producer = TracedProducer(bootstrap_servers=bootstrap)
    for i in range(count):
        with traced("remote-request"), bound(order=f"o{i}"):
            producer.send(topic, f"m{i}".encode())
            print(format(trace.get_current_span().get_span_context().trace_id, "032x"), flush=True)
    producer.flush(10)
    producer.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
