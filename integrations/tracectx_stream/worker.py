"""`SpanStream`: one instance of the ``tracectx stream`` consumer group.

Two stages, each an ordinary Kafka consumer group, so more instances share the work and a
rebalance moves it:

1. **re-key** (skipped when the input is already partitioned by trace id): read span records
   from the input topics, split them by trace id, write each trace's spans to `rekey_topic`
   keyed by trace id — so every span of a trace lands in one partition, owned by one instance.
2. **assemble**: collect each trace's spans until it has been quiet for ``wait_s``
   (`TraceAssembler`), run the visualiser's analysis on it (the same code as
   ``tracectx graph``), and hand each error path to the outputs: the paths topic, the rolling
   flow graph, callbacks (alerting, OTLP write-back).

Offsets are committed only for records whose traces were all analysed (`OffsetTracker`), so a
crash or a rebalance loses nothing: the new owner re-reads from there (at-least-once; paths keep
their key, so re-delivery is recognised downstream). Poison records are counted and skipped.
Shutdown (`stop()`) commits what was analysed and leaves open traces to the next owner.
"""

from __future__ import annotations

import json
import logging
import operator
import threading
import time
from collections.abc import Callable, Hashable
from typing import Any, Protocol

from kafka import ConsumerRebalanceListener, KafkaConsumer, KafkaProducer
from kafka.structs import OffsetAndMetadata, TopicPartition

from tracectx.viz.analysis import analyse
from tracectx.viz.model import Span, SpanSet
from tracectx_stream.assembler import TraceAssembler, TraceBuffer
from tracectx_stream.decode import decode_record, decode_trace_batch, encode_trace_batch
from tracectx_stream.offsets import OffsetTracker
from tracectx_stream.paths import (
    FlowCount,
    FlowWindow,
    SeenTraces,
    TraceOutput,
    path_records,
)
from tracectx_stream.settings import StreamSettings
from tracectx_stream.stats import StreamStats, register_metrics

__all__ = ["PathHandler", "SpanStream", "Stage"]

PathHandler = Callable[[dict[str, Any]], None]

_START_AND_ID = operator.attrgetter("start_ns", "span_id")  # a (start, id) key, without a call


def canonical_order(spans: list[Span]) -> list[Span]:
    """`spans` by start time, then span id: the analysis breaks ties by input order, and a trace
    re-assembled after a rebalance may have arrived in another order (its paths must not
    change, their keys being the same)."""
    return sorted(spans, key=_START_AND_ID)


class Stage(Protocol):
    """Work run beside the stream in its own thread (e.g. the alert stage's consumer)."""

    def run(self, stop: threading.Event) -> None: ...

    def flush(self) -> None: ...


_log = logging.getLogger("tracectx.stream")
POLL_MS = 200
LAG_INTERVAL_S = 5.0
CLOSE_TIMEOUT_MS = 10_000  # a broker gone at shutdown must not keep the instance alive


def _by_trace(spans: list[Span]) -> dict[str, list[Span]]:
    out: dict[str, list[Span]] = {}
    for span in spans:
        out.setdefault(span.trace_id, []).append(span)
    return out


class SpanStream:
    """One instance: ``SpanStream(settings).run()`` blocks until `stop()` (or idle exit)."""

    def __init__(
        self,
        settings: StreamSettings,
        handlers: list[PathHandler] | None = None,
        *,
        stages: list[Stage] | None = None,
    ) -> None:
        self.settings = settings
        self.handlers = list(handlers or [])
        self.stages = list(stages or [])
        self.stats = StreamStats()
        register_metrics(self.stats)
        self.flow = FlowWindow()
        self._stop = threading.Event()
        self._seen = SeenTraces()
        # What each path of a trace not final yet added to the flow graph, so that the path of
        # a re-opened trace replaces its earlier version there too (dropped once final).
        self._flow_counts: dict[str, dict[str, FlowCount]] = {}
        self._producer: KafkaProducer | None = None

    # -- control -------------------------------------------------------------------------

    def stop(self) -> None:
        """Finish the current poll, commit what was analysed, and return from `run`."""
        self._stop.set()

    def run(self) -> None:
        """Run both stages until `stop()` (or `idle_exit_s` without input)."""
        s = self.settings
        self._producer = KafkaProducer(
            bootstrap_servers=s.bootstrap_servers, client_id=s.client_id, linger_ms=5, acks="all"
        )
        threads = [
            threading.Thread(target=stage.run, args=(self._stop,), name="tracectx-stage")
            for stage in self.stages
        ]
        if not s.partitioned_by_trace:
            threads.append(threading.Thread(target=self._rekey_loop, name="tracectx-rekey"))
        try:
            for thread in threads:
                thread.start()
            self._assemble_loop()
        finally:
            self._stop.set()
            for thread in threads:
                thread.join()
            self._producer.flush(timeout=CLOSE_TIMEOUT_MS / 1000)
            self._producer.close(timeout=CLOSE_TIMEOUT_MS / 1000)

    # -- stage 1: re-key -----------------------------------------------------------------

    def _rekey_loop(self) -> None:
        s = self.settings
        consumer = KafkaConsumer(*s.topics, **s.consumer_config(f"{s.group}.rekey"))
        producer = self._producer
        assert producer is not None
        try:
            while not self._stop.is_set():
                batches = consumer.poll(timeout_ms=POLL_MS)
                if not batches:
                    continue
                for records in batches.values():
                    for record in records:
                        decoded = decode_record(record.value, s.input_format)
                        if decoded.problems and not decoded.spans:
                            self.stats.poison_records += 1
                            self.stats.note_problem(decoded.problems[0])
                            continue
                        self.stats.spans_in += len(decoded.spans)
                        for trace_id, spans in _by_trace(decoded.spans).items():
                            producer.send(
                                s.rekey_topic,
                                key=trace_id.encode(),
                                value=encode_trace_batch(spans),
                            )
                producer.flush()  # written before the input offsets move on
                consumer.commit()
        finally:
            consumer.close(autocommit=False, timeout_ms=CLOSE_TIMEOUT_MS)

    # -- stage 2: assemble, analyse, emit ------------------------------------------------

    def _assemble_loop(self) -> None:
        s = self.settings
        source = (s.rekey_topic,) if not s.partitioned_by_trace else s.topics
        assembler = TraceAssembler(s.wait_s, grace_s=s.grace_s, max_traces=s.max_traces)
        tracker = OffsetTracker()
        consumer = KafkaConsumer(**s.consumer_config(s.group))
        consumer.subscribe(list(source), listener=_Rebalance(self, consumer, assembler, tracker))
        last_commit = last_input = last_lag = time.monotonic()
        try:
            while not self._stop.is_set():
                batches = consumer.poll(timeout_ms=POLL_MS)
                now = time.monotonic()
                for tp, records in batches.items():
                    last_input = now
                    for record in records:
                        self._take(record, tp, now, assembler, tracker)
                for buf in assembler.due(now):
                    self._analyse(buf)
                for buf in assembler.final(now):
                    tracker.done(buf.sources)  # type: ignore[arg-type]
                    self._flow_counts.pop(buf.trace_id, None)
                self.stats.traces_in_flight = len(assembler)
                self.stats.late_spans = assembler.stats.late_spans
                self.stats.reopened_traces = assembler.stats.reopened
                self.stats.evicted_traces = assembler.stats.evicted
                if now - last_commit >= s.commit_interval_s:
                    self._commit(consumer, tracker)
                    last_commit = now
                if now - last_lag >= LAG_INTERVAL_S:
                    last_lag = now
                    self.stats.lag = _lag(consumer)
                if (
                    s.idle_exit_s is not None
                    and now - last_input >= s.idle_exit_s
                    and not len(assembler)
                ):
                    break
        finally:
            self._commit(consumer, tracker)
            consumer.close(autocommit=False, timeout_ms=CLOSE_TIMEOUT_MS)

    def _take(
        self,
        record: Any,
        tp: TopicPartition,
        now: float,
        assembler: TraceAssembler,
        tracker: OffsetTracker,
    ) -> None:
        s = self.settings
        decoded = (
            decode_trace_batch(record.value)
            if not s.partitioned_by_trace
            else decode_record(record.value, s.input_format)
        )
        if decoded.problems and not decoded.spans:
            self.stats.poison_records += 1
            self.stats.note_problem(decoded.problems[0])
            tracker.seen(tp, record.offset, 0)
            return
        if s.partitioned_by_trace:
            self.stats.spans_in += len(decoded.spans)
        # seen() before add(): a trace evicted by add() is only handed over by the next due().
        taken = assembler.add(decoded.spans, now, source=(tp, record.offset))
        tracker.seen(tp, record.offset, len(taken))

    def _analyse(self, buf: TraceBuffer) -> None:
        started = time.perf_counter()
        records = [
            record
            for analysis in analyse(SpanSet(canonical_order(buf.spans)))
            for record in path_records(analysis)
        ]
        self.stats.traces_assembled += 1
        before = self._seen.get(buf.trace_id)
        if before is None and not records:
            pass  # no error, now or before (the usual trace): nothing to produce or remember
        elif before is not None and len(buf.spans) < before.spans:
            # a fragment of a trace analysed whole before (re-read after a rebalance): the
            # fuller result stands
            self.stats.duplicate_paths += len(records)
        else:
            self._produce(buf.trace_id, len(buf.spans), records, before)
        self.stats.analyse_seconds += time.perf_counter() - started

    def _produce(
        self,
        trace_id: str,
        spans: int,
        records: list[dict[str, Any]],
        before: TraceOutput | None,
    ) -> None:
        """Produce a trace's paths that are new or changed since its last analysis, and withdraw
        the ones it no longer has. The flow graph and the error counts follow."""
        earlier = before.paths if before is not None else {}
        flows = self._flow_counts.setdefault(trace_id, {})
        now: dict[str, tuple[int, str, str]] = {}
        for record in records:
            key = record["key"]
            value = json.dumps(record, separators=(",", ":"), default=str).encode()
            now[key] = entry = (hash(value), record["kind"], record["origin"].get("service", ""))
            old = earlier.get(key)
            if old is not None and old[0] == entry[0]:
                self.stats.duplicate_paths += 1
                continue
            if old is None:
                self.stats.count_kind(entry[1], entry[2])
            else:
                self.stats.updated_paths += 1
            if key in flows:
                self.flow.retract(flows[key])
            flows[key] = self.flow.add(record)
            self._emit(record, value)
        for key, (_, kind, service) in earlier.items():
            if key in now:
                continue
            self.stats.withdrawn_paths += 1  # the fuller trace has no such path
            self.stats.uncount_kind(kind, service)
            if key in flows:
                self.flow.retract(flows.pop(key))
            s = self.settings
            if s.paths_topic and self._producer is not None:  # a tombstone: compaction drops it
                self._producer.send(s.paths_topic, key=key.encode(), value=None)
        self._seen.put(trace_id, TraceOutput(spans, now))

    def _emit(self, record: dict[str, Any], value: bytes) -> None:
        """Produce a path (`value` is its JSON) and hand it to the handlers."""
        self.stats.paths_out += 1
        s = self.settings
        if s.paths_topic and self._producer is not None:
            self._producer.send(s.paths_topic, key=record["key"].encode(), value=value)
        for handler in self.handlers:
            try:
                handler(record)
            except Exception:  # a failing output must not stop the stream
                self.stats.handler_errors += 1
                _log.exception("tracectx stream: a path handler failed")

    def _commit(self, consumer: KafkaConsumer, tracker: OffsetTracker) -> None:
        offsets = tracker.committable()
        if not offsets:
            return
        if self._producer is not None:
            self._producer.flush()  # paths out before the input they came from is committed
        for stage in self.stages:
            stage.flush()
        try:
            consumer.commit({tp: OffsetAndMetadata(off, "", -1) for tp, off in offsets.items()})
        except Exception:  # rebalancing: the listener commits, or the next owner re-reads
            _log.warning("tracectx stream: offset commit failed; will retry", exc_info=True)
            return
        tracker.committed(offsets)
        self.stats.commits += 1


def _lag(consumer: KafkaConsumer) -> int:
    """Records behind the end of the partitions this instance owns (-1 if unknown right now)."""
    assigned = list(consumer.assignment())
    if not assigned:
        return 0
    try:
        ends = consumer.end_offsets(assigned)
        return sum(max(ends[tp] - consumer.position(tp), 0) for tp in assigned)
    except Exception:  # a rebalance or a broker hiccup: try again next time
        return -1


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    """Partitions taken away: commit what is done, drop their open traces, and read them again
    from the oldest record not done.

    The new owner starts at the committed offset. A partition this instance gets back is
    rewound there too (`seek`), whatever the client does with positions across a rebalance:
    kafka-python >= 3.0.12 keeps them, so the records of the dropped traces would otherwise
    never be read again and those traces would stay analysed in part."""

    def __init__(
        self,
        stream: SpanStream,
        consumer: KafkaConsumer,
        assembler: TraceAssembler,
        tracker: OffsetTracker,
    ) -> None:
        self.stream, self.consumer = stream, consumer
        self.assembler, self.tracker = assembler, tracker
        self._rewind: dict[TopicPartition, int] = {}

    def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        self.stream._commit(self.consumer, self.tracker)
        self._rewind.clear()  # only for this rebalance (a cooperative one may not assign after)
        gone: set[Hashable] = set(revoked)
        for tp in revoked:
            offset = self.tracker.safe_offset(tp)
            if offset is not None:
                self._rewind[tp] = offset
        dropped = self.assembler.drop(lambda b: not any(src[0] in gone for src in b.sources))  # type: ignore[index]
        self.tracker.forget(gone)
        for buf in dropped:
            self.stream._flow_counts.pop(buf.trace_id, None)
        self.stream.stats.rebalances += 1
        self.stream.stats.dropped_on_rebalance += len(dropped)

    def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        for tp in assigned:
            offset = self._rewind.get(tp)
            if offset is not None:
                self.consumer.seek(tp, offset)
        self._rewind.clear()
        self.stream.stats.assigned = sorted(f"{tp.topic}[{tp.partition}]" for tp in assigned)
