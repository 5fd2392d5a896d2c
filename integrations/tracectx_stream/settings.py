"""What a `tracectx stream` instance reads, writes and holds: one frozen settings object."""

from __future__ import annotations

import dataclasses

__all__ = ["StreamSettings"]


@dataclasses.dataclass(frozen=True)
class StreamSettings:
    """Args:
    bootstrap_servers: the Kafka cluster holding the span topic(s).
    topics: span topics, as the OTel Collector's or rotel's Kafka exporter writes them.
    group: consumer group; run more instances with the same group to scale out.
    input_format: ``otlp_proto`` (the Collector's default), ``otlp_json``, or ``auto``.
    partitioned_by_trace: the input is keyed by trace id (the Collector's
        ``partition_traces_by_id``); otherwise spans are first re-keyed through `rekey_topic`
        so that one instance assembles each trace.
    rekey_topic: tracectx's own topic of span batches keyed by trace id.
    paths_topic: where error paths are written (keyed by path key; None: not written).
    alerts_topic: error events re-keyed by rule group, for the alert stage.
    wait_s: a trace is complete once no span of it arrived for this long.
    grace_s: after that, a late span re-opens the trace for this long (default: 3 x wait_s
        and at least 30 s, longer than a rebalance after an instance dies); input offsets are
        committed only once a trace is past its grace.
    max_traces: most traces held at once (the oldest is analysed early past it, and counted).
    max_trace_spans: most spans held for one trace (the rest counted as capped and dropped).
    commit_interval_s: how often processed offsets are committed.
    consumer_options: kafka-python settings for the stages' consumers over the defaults.
    producer_options: librdkafka settings for the outputs' producer over the defaults (e.g.
        a shorter ``delivery.timeout.ms``; the outputs are produced with confluent-kafka).
    idle_exit_s: stop after this long without input, everything analysed (batch runs, tests).
    check_propagation: keep the last 5 minutes of traces (at most 100k spans) and find the hops
        that lost trace context across them (``GET /propagation``, ``propagation`` in /stats).
    stall_s: a stage with no good step for this long is unhealthy (``/healthz`` answers 503).
    give_up_s: a stage failing this long without a good step stops the instance (exit 1).
    """

    bootstrap_servers: str
    topics: tuple[str, ...] = ("otlp_spans",)
    group: str = "tracectx-stream"
    input_format: str = "auto"
    partitioned_by_trace: bool = False
    rekey_topic: str = "tracectx.spans-by-trace"
    paths_topic: str | None = "tracectx.error-paths"
    alerts_topic: str = "tracectx.error-events"
    wait_s: float = 10.0
    grace_s: float | None = None
    max_traces: int = 100_000
    max_trace_spans: int = 100_000
    commit_interval_s: float = 2.0
    idle_exit_s: float | None = None
    check_propagation: bool = False
    stall_s: float = 30.0
    give_up_s: float = 300.0
    client_id: str = "tracectx-stream"
    consumer_options: dict[str, object] = dataclasses.field(default_factory=dict)
    producer_options: dict[str, object] = dataclasses.field(default_factory=dict)

    def producer_config(self) -> dict[str, object]:
        """librdkafka producer settings for the stream's outputs (`delivery.producer_config`
        with `producer_options` over it)."""
        from tracectx_stream.delivery import producer_config

        return {**producer_config(self.bootstrap_servers, self.client_id), **self.producer_options}

    def consumer_config(self, group: str) -> dict[str, object]:
        """kafka-python consumer settings for one stage's group (manual commits)."""
        return {
            "bootstrap_servers": self.bootstrap_servers,
            "group_id": group,
            "client_id": self.client_id,
            "enable_auto_commit": False,
            "auto_offset_reset": "earliest",
            "max_poll_interval_ms": 30_000,
            "session_timeout_ms": 10_000,
            "heartbeat_interval_ms": 1_000,
            **self.consumer_options,
        }
