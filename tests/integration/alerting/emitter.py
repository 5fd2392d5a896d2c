"""Run as a separate process: raise N BUSINESS errors for one account on resource "payment",
counted in Redis-shared windows, alerts to Alertmanager; print how many alerts this process fired."""

from __future__ import annotations

import contextlib
import sys

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from tests.alerting.rules import sentinel_rule
from tracectx import ErrorKind, new_error, traced
from tracectx.alerting import (
    AlertEngine,
    AlertmanagerSink,
    ErrorStreamProcessor,
    RedisWindows,
)


def main(redis_url: str, am_url: str, account: str, count: int) -> None:
    provider = TracerProvider()
    trace.set_tracer_provider(provider)
    sink = AlertmanagerSink(am_url)
    rule = sentinel_rule()
    engine = AlertEngine([rule], sinks={"am": sink}, windows=RedisWindows(redis_url))
    fired: list = []
    provider.add_span_processor(ErrorStreamProcessor([lambda e: fired.extend(engine.observe(e))]))
    for _ in range(count):
        with contextlib.suppress(Exception), traced("payment"):
            raise new_error(ErrorKind.BUSINESS, "insufficient balance", account_id=account)
    sink.dispatcher.flush(10)
    print(len(fired), flush=True)
    engine.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
