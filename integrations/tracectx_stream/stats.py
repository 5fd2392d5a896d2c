"""What a stream instance has done: counters for operators (``GET /stats``), also observable on
the OTel metrics API as ``tracectx.stream.*`` once the app sets a MeterProvider."""

from __future__ import annotations

import copy
import dataclasses
import itertools
import threading
import weakref
from collections import Counter
from typing import Any

__all__ = ["StreamStats", "register_metrics"]

COUNTERS = (
    "spans_in",
    "poison_records",
    "poison_traces",
    "redone_traces",
    "outputs_rejected",
    "outputs_given_up",
    "capped_spans",
    "traces_assembled",
    "late_spans",
    "reopened_traces",
    "evicted_traces",
    "paths_out",
    "duplicate_paths",
    "updated_paths",
    "withdrawn_paths",
    "handler_errors",
    "rebalances",
    "dropped_on_rebalance",
    "alert_errors",
    "writeback_errors",
    "alerts_adopted",
    "alert_states_refused",
)
GAUGES = ("traces_in_flight", "lag")

MAX_PROBLEMS = 20


@dataclasses.dataclass
class StreamStats:
    spans_in: int = 0
    poison_records: int = 0
    poison_traces: int = 0  # traces the analysis failed on (hostile spans): skipped, counted
    redone_traces: int = 0  # traces whose output was refused: undone and read again
    outputs_rejected: int = 0  # records the broker can never take (too large...): not retried
    outputs_given_up: int = 0  # traces whose output was refused MAX_REDO times: not redone
    capped_spans: int = 0  # spans past a trace's max_trace_spans: counted and dropped
    traces_assembled: int = 0
    traces_in_flight: int = 0
    late_spans: int = 0
    reopened_traces: int = 0
    evicted_traces: int = 0
    paths_out: int = 0
    duplicate_paths: int = 0
    updated_paths: int = 0  # a re-opened trace gave a different path: produced again
    withdrawn_paths: int = 0  # a re-opened trace no longer had a path: a tombstone produced
    handler_errors: int = 0
    commits: int = 0
    lag: int = 0  # records behind the end of the owned partitions (the assembling stage)
    rebalances: int = 0
    dropped_on_rebalance: int = 0
    alert_errors: int = 0  # alert evaluations or ticks that raised (logged; the stage went on)
    alerts_adopted: int = 0  # firing alerts taken over from a stopped instance (with Redis)
    # hand-over states dropped: no valid tag (HMAC), unreadable, or not the rule's alert
    alert_states_refused: int = 0
    decode_seconds: float = 0.0  # thread CPU reading input records (OTLP) into spans
    analyse_seconds: float = 0.0  # thread CPU analysing assembled traces
    output_seconds: float = 0.0  # thread CPU producing their paths (and the path handlers)
    # process CPU seconds (time.process_time) when the first input record was read and when the
    # last path was produced: the instance's cost for its work, start-up excluded
    cpu_first_input: float | None = None
    cpu_last_output: float | None = None
    assigned: list[str] = dataclasses.field(default_factory=list)
    errors_by_kind: Counter[tuple[str, str]] = dataclasses.field(default_factory=Counter)
    problems: list[str] = dataclasses.field(default_factory=list)
    # records acknowledged / refused by the broker, by topic (`delivery.Outbox`)
    produced: Counter[str] = dataclasses.field(default_factory=Counter)
    produce_errors: Counter[str] = dataclasses.field(default_factory=Counter)
    writeback_errors: int = 0  # write-back exports that failed after the exporter's retries
    # each stage's health (`supervise.StageHealth`), by stage name
    stages: dict[str, Any] = dataclasses.field(default_factory=dict)

    def note_problem(self, text: str) -> None:
        """Keep the first few input problems, for the operator (bounded)."""
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(text[:200])

    def count_kind(self, kind: str, service: str) -> None:
        if len(self.errors_by_kind) < 10_000 or (kind, service) in self.errors_by_kind:
            self.errors_by_kind[(kind, service)] += 1

    def uncount_kind(self, kind: str, service: str) -> None:
        """Take back a `count_kind` (a withdrawn path)."""
        if self.errors_by_kind.get((kind, service), 0) > 0:
            self.errors_by_kind[(kind, service)] -= 1
            if not self.errors_by_kind[(kind, service)]:
                del self.errors_by_kind[(kind, service)]

    def as_dict(self) -> dict[str, Any]:
        out = {
            f.name: copy.copy(getattr(self, f.name))
            for f in dataclasses.fields(self)
            if f.name != "stages"
        }
        out["stages"] = {name: h.as_dict() for name, h in list(self.stages.items())}
        out["produced"] = dict(self.produced)
        out["produce_errors"] = dict(self.produce_errors)
        out["errors_by_kind"] = [
            {"kind": k, "service": s, "count": n}
            for (k, s), n in list(self.errors_by_kind.items())  # the stream's thread adds keys
        ]
        return out


INSTANCE = "tracectx.stream.instance"  # the attribute telling the streams of a process apart


class _Streams:
    """The streams one meter provider's instruments report: held weakly, so a stream gone is
    no longer reported nor kept alive. The instruments are created once per provider: the SDK
    keeps an instrument name's first callbacks and ignores any registered after them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stats: dict[int, weakref.ref[StreamStats]] = {}

    def add(self, stats: StreamStats) -> None:
        with self._lock:
            self._stats[next(_instances)] = weakref.ref(stats)

    def live(self) -> list[tuple[int, StreamStats]]:
        """(instance number, stats) of every stream still alive; the others are forgotten."""
        with self._lock:
            out = [(n, s) for n, ref in self._stats.items() if (s := ref()) is not None]
            self._stats = {n: self._stats[n] for n, _ in out}
        return out


_instances = itertools.count(1)
_global_streams: _Streams | None = None  # the global meter provider's (or its proxy's)
_provider_streams: weakref.WeakKeyDictionary[Any, _Streams] = weakref.WeakKeyDictionary()
_registry_lock = threading.Lock()


def register_metrics(stats: StreamStats, meter_provider: Any = None) -> None:
    """Expose `stats` as observable instruments of `meter_provider` (default: the global one):
    counters for what only grows, gauges for traces in flight and lag, errors by kind and
    service. Each stream's points carry its `INSTANCE` number (several streams may run in one
    process); a stream is reported while its stats are alive."""
    global _global_streams
    with _registry_lock:
        streams = (
            _global_streams if meter_provider is None else _provider_streams.get(meter_provider)
        )
        if streams is None:
            streams = _Streams()
            _instruments(streams, meter_provider)
            if meter_provider is None:
                _global_streams = streams
            else:
                _provider_streams[meter_provider] = streams
    streams.add(stats)


def _instruments(streams: _Streams, meter_provider: Any) -> None:
    """Create the instruments, once per provider, each reading every live stream."""
    from opentelemetry import metrics
    from opentelemetry.metrics import CallbackOptions, Observation

    meter = metrics.get_meter("tracectx_stream", meter_provider=meter_provider)

    def reader(name: str) -> Any:
        def observe(options: CallbackOptions) -> list[Observation]:
            return [Observation(getattr(s, name), {INSTANCE: n}) for n, s in streams.live()]

        return observe

    for name in COUNTERS:
        meter.create_observable_counter(f"tracectx.stream.{name}", callbacks=[reader(name)])
    for name in GAUGES:
        meter.create_observable_gauge(f"tracectx.stream.{name}", callbacks=[reader(name)])

    def errors(options: CallbackOptions) -> list[Observation]:
        return [
            Observation(count, {"error.kind": kind, "service.name": service, INSTANCE: n})
            for n, s in streams.live()
            for (kind, service), count in list(s.errors_by_kind.items())
        ]

    meter.create_observable_counter("tracectx.stream.errors", callbacks=[errors])

    def refused(options: CallbackOptions) -> list[Observation]:
        return [
            Observation(count, {"messaging.destination.name": topic, INSTANCE: n})
            for n, s in streams.live()
            for topic, count in list(s.produce_errors.items())
        ]

    meter.create_observable_counter("tracectx.stream.produce_errors", callbacks=[refused])
