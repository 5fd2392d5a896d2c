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

Delivery is at-least-once, and nothing is committed on a hope: input offsets move only past
records whose traces were all analysed (`OffsetTracker`) *and* whose outputs were acknowledged
(`Outbox`; a handler with ``settle()`` is asked too). An output refused past the producer's
retries undoes its trace and the stage reads it again. Every record of every topic is hostile
input: a record that cannot be read, or that makes the analysis fail, is counted and skipped.
Each stage runs under `supervise`: a Kafka or network fault reopens the stage with backoff; a
stage that cannot recover stops the instance (`run` raises `StageFailed`).
"""

from __future__ import annotations

import dataclasses
import logging
import operator
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable
from typing import Any, Protocol

from kafka import ConsumerRebalanceListener, KafkaConsumer
from kafka.structs import OffsetAndMetadata, TopicPartition

from tracectx.viz.analysis import analyse
from tracectx.viz.model import Span, SpanSet
from tracectx.viz.propagation_check import PropagationReport
from tracectx.viz.propagation_window import PropagationWindow
from tracectx_stream.assembler import AssemblerStats, TraceAssembler, TraceBuffer
from tracectx_stream.decode import decode_record, decode_trace_batch, encode_trace_batch
from tracectx_stream.delivery import Outbox, OutputFailed, OutputProducer
from tracectx_stream.offsets import OffsetTracker
from tracectx_stream.paths import (
    FlowCount,
    FlowWindow,
    SeenTraces,
    TraceOutput,
    path_json,
    path_records,
)
from tracectx_stream.settings import StreamSettings
from tracectx_stream.stats import StreamStats, register_metrics
from tracectx_stream.supervise import Stage as Supervised
from tracectx_stream.supervise import StageFailed, StageHealth, close_quietly, supervise

__all__ = ["PathHandler", "SpanStream", "Stage", "StageFailed"]

PathHandler = Callable[[dict[str, Any]], None]

_START_AND_ID = operator.attrgetter("start_ns", "span_id")  # a (start, id) key, without a call


def canonical_order(spans: list[Span]) -> list[Span]:
    """`spans` by start time, then span id: the analysis breaks ties by input order, and a trace
    re-assembled after a rebalance may have arrived in another order (its paths must not
    change, their keys being the same)."""
    return sorted(spans, key=_START_AND_ID)


class Stage(Protocol):
    """Work run beside the stream in its own supervised thread (e.g. the alert stage)."""

    name: str

    def open(self) -> None: ...

    def step(self) -> None: ...

    def close(self) -> None: ...

    def abandon(self) -> None: ...

    def settle(self, beat: Callable[[], None] | None = None) -> set[Hashable]: ...


_log = logging.getLogger("tracectx.stream")
POLL_MS = 200
LAG_INTERVAL_S = 5.0
CLOSE_TIMEOUT_MS = 10_000  # a broker gone at shutdown must not keep the instance alive
# Work on one poll's records stops after this long; the rest is read again by the next poll,
# so the consumer polls well within max_poll_interval_ms (30 s) however slow the records.
BATCH_BUDGET_S = 5.0
MAX_REDO = 3  # a trace whose output is refused this often is given up (counted, logged)
MAX_REKEY_BYTES = 900_000  # a re-keyed batch over this is split (Kafka's default limit: 1 MiB)


def _by_trace(spans: list[Span]) -> dict[str, list[Span]]:
    out: dict[str, list[Span]] = {}
    for span in spans:
        out.setdefault(span.trace_id, []).append(span)
    return out


def _within_budget(
    consumer: KafkaConsumer,
    batches: dict[TopicPartition, list[Any]],
    take: Callable[[TopicPartition, Any], None],
    budget_s: float = BATCH_BUDGET_S,
) -> None:
    """`take` each polled record until `budget_s` is spent; rewind each partition to its first
    record not taken, so the next poll returns it again."""
    deadline = time.monotonic() + budget_s
    for tp, records in batches.items():
        for i, record in enumerate(records):
            if i and time.monotonic() > deadline:
                consumer.seek(tp, record.offset)
                break
            take(tp, record)


def _encoded(spans: list[Span]) -> list[bytes]:
    """`spans` as re-keyed batches, split until each is under `MAX_REKEY_BYTES` (a trace's
    spans in one input record may be more than one Kafka record can hold)."""
    value = encode_trace_batch(spans)
    if len(value) <= MAX_REKEY_BYTES or len(spans) < 2:
        return [value]
    half = len(spans) // 2
    return _encoded(spans[:half]) + _encoded(spans[half:])


def _lag(consumer: KafkaConsumer) -> int:
    """Records behind the end of the partitions this instance owns, from what the last fetches
    said (no request: a broker gone must not stall the loop); -1 if not known yet."""
    total, known = 0, False
    try:
        for tp in consumer.assignment():
            high = consumer.highwater(tp)
            if high is None:
                continue
            known = True
            total += max(high - consumer.position(tp, timeout_ms=0), 0)
    except Exception:  # a rebalance or a broker hiccup: try again next time
        return -1
    return total if known else (0 if not consumer.assignment() else -1)


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
        # What each path of a trace not committed yet added to the flow graph, so that the path
        # of a re-opened trace replaces its earlier version there (dropped once committed).
        self._flow_counts: dict[str, dict[str, FlowCount]] = {}
        self._producer: OutputProducer | None = None
        self._outbox: Outbox | None = None
        self.health: dict[str, StageHealth] = {}
        self.failure: BaseException | None = None
        self._handler_failed: set[Hashable] = set()  # traces a path handler raised on
        self._redone: OrderedDict[str, int] = OrderedDict()  # trace -> times its output failed
        # recent traces checked together for lost context (`--check-propagation`)
        self.propagation: PropagationWindow | None = (
            PropagationWindow() if settings.check_propagation else None
        )
        self._propagation_lock = threading.Lock()
        self._propagation_report: tuple[float, PropagationReport] | None = None
        self.stats.stages = self.health
        # for --idle-exit: when a stage last read input, and whether the re-key stage has
        # joined its group (an instance must not call itself idle before it could read)
        self.last_input = time.monotonic()
        self.rekey_joined = settings.partitioned_by_trace

    # -- control -------------------------------------------------------------------------

    def stop(self) -> None:
        """Finish the current poll, commit what was analysed, and return from `run`."""
        self._stop.set()

    def run(self) -> None:
        """Run every stage until `stop()` (or `idle_exit_s` without input); raise `StageFailed`
        if a stage could not recover (the instance should exit non-zero and be restarted)."""
        s = self.settings
        self._producer = self._connect()
        self._outbox = Outbox(self._producer, self.stats)
        stages: list[Supervised] = list(self.stages)
        if not s.partitioned_by_trace:
            stages.append(_RekeyStage(self))
        threads = [
            threading.Thread(target=self._supervised, args=(st,), name=f"tracectx-{st.name}")
            for st in stages
        ]
        assemble = _AssembleStage(self)
        try:
            for thread in threads:
                thread.start()
            self._supervised(assemble)
        finally:
            self._stop.set()
            for thread in threads:
                thread.join()
            producer, self._producer, self._outbox = self._producer, None, None
            left = producer.close(CLOSE_TIMEOUT_MS / 1000)
            if left:  # the broker is gone: what was not sent is re-read by the group
                _log.warning("tracectx stream: %d record(s) not flushed at exit", left)
            self._close_outputs()
        if self.failure is not None:
            raise StageFailed(str(self.failure)) from self.failure

    def _close_outputs(self) -> None:
        """Every stage has stopped, nothing routes any more: outputs with a client of their own
        end it (``close_output``: the alert stage flushes and closes its producer, the
        write-back exports what is left and shuts its exporter down)."""
        outputs = {id(o): o for o in [*self.stages, *self.handlers]}
        for output in outputs.values():
            close_output = getattr(output, "close_output", None)
            if close_output is None:
                continue
            try:
                close_output(CLOSE_TIMEOUT_MS / 1000)
            except Exception:  # the broker is gone: traces whose events were not acknowledged
                # were not committed past, and are read again
                _log.warning("tracectx stream: an output not flushed at exit", exc_info=True)

    def _connect(self) -> OutputProducer:
        """The shared producer (it connects in the background: a broker not up yet shows as
        stages failing, supervised); settings librdkafka refuses are `StageFailed` at once."""
        try:
            return OutputProducer(self.settings.producer_config())
        except Exception as exc:
            _log.critical("tracectx stream: no producer (%r); stopping", exc)
            raise StageFailed(f"producer: {exc!r}") from exc

    def _supervised(self, stage: Supervised) -> None:
        health = self.health.setdefault(stage.name, StageHealth(stage.name))
        try:
            supervise(stage, health, self._stop, give_up_s=self.settings.give_up_s)
        except BaseException as exc:  # StageFailed, or a bug in the supervisor itself
            if self.failure is None:
                self.failure = exc
            self._stop.set()
            if not isinstance(exc, Exception):
                raise

    def healthy(self) -> tuple[bool, dict[str, Any]]:
        """Liveness: every stage alive and stepping (no good step for ``stall_s`` is a stall)."""
        now = time.monotonic()
        stall = self.settings.stall_s
        stages = {name: h.as_dict(now) for name, h in list(self.health.items())}
        bad = [
            name
            for name, h in list(self.health.items())
            if h.stalled(stall, now) and not self._stop.is_set()
        ]
        ok = not bad and self.failure is None and bool(stages)
        return ok, {"ok": ok, "stalled": bad, "stages": stages}

    def ready(self) -> tuple[bool, dict[str, Any]]:
        """Readiness: alive, and the assembling stage is in its group with partitions."""
        ok, detail = self.healthy()
        assemble = self.health.get("assemble")
        owns = assemble is not None and assemble.partitions > 0
        return ok and owns, {**detail, "ok": ok and owns, "partitions": self.stats.assigned}

    def propagation_check(self, max_age_s: float = 30.0) -> PropagationReport | None:
        """Lost-context findings and the propagation health table over the recent traces,
        checked off the stream's thread at most every `max_age_s` (the spans are copied under
        the lock, checked outside it). None unless ``check_propagation`` is set."""
        if self.propagation is None:
            return None
        cached = self._propagation_report
        if cached is not None and time.monotonic() - cached[0] < max_age_s:
            return cached[1]
        from tracectx.viz.propagation_check import check_propagation

        with self._propagation_lock:
            spans, newest = self.propagation.snapshot()
        report = check_propagation(spans, now_ns=newest)
        self._propagation_report = (time.monotonic(), report)
        return report

    def propagation_report(self, max_age_s: float = 30.0) -> dict[str, Any] | None:
        """`propagation_check` as JSON-ready data (`tracectx graph --check-propagation`'s JSON
        section): ``findings``, ``split_traces``, ``health``, ``orphans``."""
        report = self.propagation_check(max_age_s)
        if report is None:
            return None
        from tracectx.viz.renderers.propagation import propagation_data

        return propagation_data(report)

    # -- output --------------------------------------------------------------------------

    def _analyse(self, buf: TraceBuffer) -> None:
        started = time.thread_time()
        try:
            records = [
                record
                for analysis in analyse(SpanSet(canonical_order(buf.spans)))
                for record in path_records(analysis)
            ]
        except Exception as exc:  # hostile spans the analysis did not expect: skip the trace
            self.stats.poison_traces += 1
            self.stats.note_problem(f"trace {buf.trace_id[:32]}: analysis failed: {exc!r}")
            _log.exception("tracectx stream: analysis of a trace failed; skipped")
            return
        self.stats.traces_assembled += 1
        if self.propagation is not None:
            with self._propagation_lock:
                self.propagation.add(buf.spans)
        before = self._seen.get(buf.trace_id)
        if before is None and not records:
            pass  # no error, now or before (the usual trace): nothing to produce or remember
        elif before is not None and len(buf.spans) < before.spans:
            # a fragment of a trace analysed whole before (re-read after a rebalance): the
            # fuller result stands
            self.stats.duplicate_paths += len(records)
        else:
            analysed = time.thread_time()
            self.stats.analyse_seconds += analysed - started
            self._produce(buf.trace_id, len(buf.spans), records, before)
            self.stats.output_seconds += time.thread_time() - analysed
            return
        self.stats.analyse_seconds += time.thread_time() - started

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
        self._seen.put(trace_id, TraceOutput(spans, now))  # before the sends: undo finds it
        for record in records:
            key = record["key"]
            value = path_json(record)
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
            self._emit(trace_id, record, value)
        for key, (_, kind, service) in earlier.items():
            if key in now:
                continue
            self.stats.withdrawn_paths += 1  # the fuller trace has no such path
            self.stats.uncount_kind(kind, service)
            if key in flows:
                self.flow.retract(flows.pop(key))
            s = self.settings
            if s.paths_topic and self._outbox is not None:  # a tombstone: compaction drops it
                self._outbox.send(s.paths_topic, key.encode(), None, trace_id)

    def _emit(self, trace_id: str, record: dict[str, Any], value: bytes) -> None:
        """Produce a path (`value` is its JSON) and hand it to the handlers."""
        self.stats.paths_out += 1
        self.stats.cpu_last_output = time.process_time()
        s = self.settings
        if s.paths_topic and self._outbox is not None:
            self._outbox.send(s.paths_topic, record["key"].encode(), value, trace_id)
        for handler in self.handlers:
            try:
                handler(record)
            except Exception:  # a failing output must not stop the stream; its trace is redone
                self.stats.handler_errors += 1
                _log.exception("tracectx stream: a path handler failed")
                self._handler_failed.add(trace_id)

    def _settle_outputs(self, beat: Callable[[], None] | None = None) -> set[Hashable]:
        """Wait for every output's answer: the traces some output was refused for."""
        failed: set[Hashable] = set(self._handler_failed)
        self._handler_failed = set()
        if self._outbox is not None:
            failed |= self._outbox.settle(beat)
        for output in [*self.stages, *self.handlers]:
            settle = getattr(output, "settle", None)
            if settle is not None:
                failed |= settle(beat)
        return failed

    def _undo(self, trace_id: Hashable) -> bool:
        """Forget what a trace produced (its output was refused), so reading it again produces
        it again: its paths, its counts, its share of the flow graph. False when the trace was
        redone `MAX_REDO` times already: its output is given up (counted, logged), so one
        output that always fails cannot stop the instance committing."""
        if not isinstance(trace_id, str):
            return False
        tries = self._redone.pop(trace_id, 0) + 1
        if tries > MAX_REDO:
            self.stats.outputs_given_up += 1
            _log.error(
                "tracectx stream: output of trace %s refused %d times; given up",
                trace_id[:32],
                tries - 1,
            )
            return False
        self._redone[trace_id] = tries
        if len(self._redone) > 10_000:
            self._redone.popitem(last=False)
        before = self._seen.pop(trace_id)
        if before is not None:
            for _, kind, service in before.paths.values():
                self.stats.uncount_kind(kind, service)
        for count in self._flow_counts.pop(trace_id, {}).values():
            self.flow.retract(count)
        self.stats.redone_traces += 1
        return True


class _RekeyStage:
    """Stage 1: input records split by trace id, written to the re-key topic."""

    name = "rekey"

    def __init__(self, stream: SpanStream) -> None:
        self.stream = stream
        self.consumer: KafkaConsumer | None = None
        self.outbox: Outbox | None = None
        self.last_lag = 0.0

    def open(self) -> None:
        s, stream = self.stream.settings, self.stream
        assert stream._producer is not None
        self.outbox = Outbox(stream._producer, stream.stats)
        stream.rekey_joined = False
        self.consumer = KafkaConsumer(**s.consumer_config(f"{s.group}.rekey"))
        self.consumer.subscribe(list(s.topics), listener=_Joined(stream))

    def step(self) -> None:
        consumer, outbox = self.consumer, self.outbox
        assert consumer is not None and outbox is not None
        batches = consumer.poll(timeout_ms=POLL_MS)
        now = time.monotonic()
        health = self.stream.health[self.name]
        if now - self.last_lag >= LAG_INTERVAL_S:
            self.last_lag = now
            health.lag = _lag(consumer)
            health.partitions = len(consumer.assignment())
        if not batches:
            return
        self.stream.last_input = now
        if self.stream.stats.cpu_first_input is None:
            self.stream.stats.cpu_first_input = time.process_time()
        _within_budget(consumer, batches, self._rekey)
        failed = outbox.settle(health.beat)  # written before the input offsets move on
        if failed:
            raise OutputFailed(failed, "re-keyed span batches")
        consumer.commit()
        self.stream.last_input = time.monotonic()  # its output is input of the next stage

    def _rekey(self, tp: TopicPartition, record: Any) -> None:
        s, stats = self.stream.settings, self.stream.stats
        assert self.outbox is not None
        try:
            started = time.thread_time()
            decoded = decode_record(record.value, s.input_format)
            stats.decode_seconds += time.thread_time() - started
            batches = [
                (trace_id.encode(), value)
                for trace_id, spans in _by_trace(decoded.spans).items()
                for value in _encoded(spans)
            ]
        except Exception as exc:  # the decoder promises not to raise: this is a bug, not a crash
            decoded, batches = SpanSet(problems=[f"record not decoded: {exc!r}"]), []
            _log.exception("tracectx stream: a record broke the decoder; skipped")
        if decoded.problems and not decoded.spans:
            stats.poison_records += 1
            stats.note_problem(f"{tp.topic}[{tp.partition}]@{record.offset}: {decoded.problems[0]}")
            return
        stats.spans_in += len(decoded.spans)
        for key, value in batches:
            self.outbox.send(s.rekey_topic, key, value, None)

    def close(self) -> None:
        if self.consumer is not None:
            try:
                if self.outbox is not None and not self.outbox.settle():
                    self.consumer.commit()
            except Exception:
                _log.warning("tracectx stream: re-key commit at close failed", exc_info=True)
            self.consumer.close(autocommit=False, timeout_ms=CLOSE_TIMEOUT_MS)
            self.consumer = None

    def abandon(self) -> None:
        close_quietly(self.consumer, CLOSE_TIMEOUT_MS)
        self.consumer = None


class _AssembleStage:
    """Stage 2: traces assembled, analysed, their paths produced; offsets committed."""

    name = "assemble"

    def __init__(self, stream: SpanStream) -> None:
        self.stream = stream
        self.consumer: KafkaConsumer | None = None
        self.broken: BaseException | None = None  # a failure inside a rebalance callback
        self.joined = False  # the consumer has had an assignment (perhaps empty) since opened
        self._fresh()

    def _fresh(self) -> None:
        s = self.stream.settings
        old = getattr(self, "assembler", None)  # a stage reopened: its counters go on
        base = getattr(self, "counted", AssemblerStats())
        if old is not None:
            for field in dataclasses.fields(AssemblerStats):
                name = field.name
                setattr(base, name, getattr(base, name) + getattr(old.stats, name))
        self.counted = base
        self.assembler = TraceAssembler(
            s.wait_s, grace_s=s.grace_s, max_traces=s.max_traces, max_spans=s.max_trace_spans
        )
        self.tracker = OffsetTracker()
        self.finalised: list[str] = []  # final since the last commit: flow counts go after it
        # traces due for analysis, analysed a budget's worth per step (a burst after an outage
        # must not hold one poll past max_poll_interval_ms); a trace final before it was
        # analysed waits in `unfinished` until it is
        self.backlog: deque[TraceBuffer] = deque()
        self.waiting: set[str] = set()
        self.unfinished: dict[str, TraceBuffer] = {}
        now = time.monotonic()
        self.last_commit = self.last_input = self.last_lag = now

    def open(self) -> None:
        s = self.stream.settings
        source = (s.rekey_topic,) if not s.partitioned_by_trace else s.topics
        self.joined = False
        self.consumer = KafkaConsumer(**s.consumer_config(s.group))
        self.consumer.subscribe(list(source), listener=_Rebalance(self))

    def step(self) -> None:
        s, stats, consumer = self.stream.settings, self.stream.stats, self.consumer
        assert consumer is not None
        batches = consumer.poll(timeout_ms=POLL_MS)
        if self.broken is not None:  # raised by the rebalance listener, inside poll: re-read
            broken, self.broken = self.broken, None
            raise broken
        now = time.monotonic()
        if batches:
            self.last_input = now
            if s.partitioned_by_trace and stats.cpu_first_input is None:
                stats.cpu_first_input = time.process_time()
            _within_budget(consumer, batches, lambda tp, record: self._take(record, tp, now))
        health = self.stream.health[self.name]
        for buf in self.assembler.due(now):
            if buf.trace_id not in self.waiting:
                self.waiting.add(buf.trace_id)
                self.backlog.append(buf)
        self._analyse_backlog()
        for buf in self.assembler.final(now):
            if buf.trace_id in self.waiting:
                self.unfinished[buf.trace_id] = buf
            else:
                self._finish(buf)
        stats.traces_in_flight = len(self.assembler)
        now_stats, base = self.assembler.stats, self.counted
        stats.late_spans = base.late_spans + now_stats.late_spans
        stats.reopened_traces = base.reopened + now_stats.reopened
        stats.evicted_traces = base.evicted + now_stats.evicted
        stats.capped_spans = base.capped + now_stats.capped
        if now - self.last_commit >= s.commit_interval_s:
            self.commit()
            self.last_commit = now
        if now - self.last_lag >= LAG_INTERVAL_S:
            self.last_lag = now
            stats.lag = health.lag = _lag(consumer)
            health.partitions = len(consumer.assignment())
        if s.idle_exit_s is not None and self._idle(now, s.idle_exit_s):
            self.stream._stop.set()

    def _idle(self, now: float, idle_s: float) -> bool:
        """Both stages have joined their groups, neither read input for `idle_s`, and every
        trace read was analysed (a group join alone can take longer than a short `idle_s`)."""
        stream = self.stream
        return (
            self.joined
            and stream.rekey_joined
            and now - max(self.last_input, stream.last_input) >= idle_s
            and not len(self.assembler)
            and not self.backlog
        )

    def _analyse_backlog(self, budget_s: float = BATCH_BUDGET_S) -> None:
        """Analyse due traces, oldest first, for at most `budget_s` (the rest next step)."""
        health = self.stream.health[self.name]
        deadline = time.monotonic() + budget_s
        while self.backlog:  # at least one per step: progress whatever the budget
            buf = self.backlog.popleft()
            self.waiting.discard(buf.trace_id)
            self.stream._analyse(buf)
            health.beat()
            done = self.unfinished.pop(buf.trace_id, None)
            if done is not None:
                self._finish(done)
            if time.monotonic() >= deadline:
                break

    def _finish(self, buf: TraceBuffer) -> None:
        """A trace analysed and past its grace: its records may be committed."""
        self.tracker.done(buf.sources)  # type: ignore[arg-type]
        self.finalised.append(buf.trace_id)

    def forget(self, dropped: list[TraceBuffer]) -> None:
        """Traces dropped (a rebalance took their partitions): not analysed here after all."""
        gone = {buf.trace_id for buf in dropped}
        if gone & self.waiting:
            self.backlog = deque(b for b in self.backlog if b.trace_id not in gone)
            self.waiting -= gone
        for trace_id in gone:
            self.unfinished.pop(trace_id, None)

    def _take(self, record: Any, tp: TopicPartition, now: float) -> None:
        s, stats = self.stream.settings, self.stream.stats
        try:
            if s.partitioned_by_trace:
                started = time.thread_time()
                decoded = decode_record(record.value, s.input_format)
                stats.decode_seconds += time.thread_time() - started
            else:
                decoded = decode_trace_batch(record.value)
            if decoded.problems and not decoded.spans:
                raise ValueError(decoded.problems[0])
            # seen() before add(): a trace evicted by add() is only handed over by due().
            taken = self.assembler.add(decoded.spans, now, source=(tp, record.offset))
        except Exception as exc:  # hostile record: counted, skipped, committed past
            stats.poison_records += 1
            stats.note_problem(f"{tp.topic}[{tp.partition}]@{record.offset}: {exc}")
            self.tracker.seen(tp, record.offset, 0)
            return
        if s.partitioned_by_trace:
            stats.spans_in += len(decoded.spans)
        self.tracker.seen(tp, record.offset, len(taken))

    def commit(self) -> None:
        """Commit input whose traces are final and whose outputs were all acknowledged; an
        output refused undoes its traces and raises `OutputFailed` (the stage re-reads)."""
        stream, consumer = self.stream, self.consumer
        assert consumer is not None
        failed = stream._settle_outputs(stream.health[self.name].beat)
        redo = {trace_id for trace_id in failed if stream._undo(trace_id)}
        if redo:
            raise OutputFailed(redo, "paths, events or write-back")
        for trace_id in self.finalised:
            stream._flow_counts.pop(trace_id, None)
        self.finalised = []
        offsets = self.tracker.committable()
        if not offsets:
            return
        consumer.commit({tp: OffsetAndMetadata(off, "", -1) for tp, off in offsets.items()})
        self.tracker.committed(offsets)
        stream.stats.commits += 1

    def close(self) -> None:
        if self.consumer is None:
            return
        try:
            self.commit()
        except Exception:  # the next owner re-reads what was not committed
            _log.warning("tracectx stream: commit at close failed", exc_info=True)
        self.consumer.close(autocommit=False, timeout_ms=CLOSE_TIMEOUT_MS)
        self.consumer = None

    def abandon(self) -> None:
        """Drop every trace in flight; reading resumes at the committed offsets. (Their flow
        counts stay: the traces are read again here, and a changed path replaces its count.)"""
        self.broken = None
        self._fresh()
        self.stream.stats.assigned = []
        self.stream.health[self.name].partitions = 0
        close_quietly(self.consumer, CLOSE_TIMEOUT_MS)
        self.consumer = None


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    """Partitions taken away: commit what is done, drop their open traces, and read them again
    from the oldest record not done.

    The new owner starts at the committed offset. A partition this instance gets back is
    rewound there too (`seek`), whatever the client does with positions across a rebalance:
    kafka-python >= 3.0.12 keeps them, so the records of the dropped traces would otherwise
    never be read again and those traces would stay analysed in part."""

    def __init__(self, stage: _AssembleStage) -> None:
        self.stage = stage
        self._rewind: dict[TopicPartition, int] = {}

    def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        stage, stream = self.stage, self.stage.stream
        try:
            stage.commit()
        except OutputFailed as exc:  # undone traces are past the tracker's safe offsets now:
            _log.warning("tracectx stream: output refused at revocation; re-reading")
            stage.broken = exc  # start over from the committed offsets (next step)
            return
        except Exception:  # e.g. kafka-python >= 3 runs this listener on its I/O thread when
            # the member was dropped, where a blocking commit raises: the next owner re-reads
            _log.warning("tracectx stream: commit on revocation failed", exc_info=True)
        self._rewind.clear()  # only for this rebalance (a cooperative one may not assign after)
        gone: set[Hashable] = set(revoked)
        for tp in revoked:
            offset = stage.tracker.safe_offset(tp)
            if offset is not None:
                self._rewind[tp] = offset
        dropped = stage.assembler.drop(lambda b: not any(src[0] in gone for src in b.sources))  # type: ignore[index]
        stage.forget(dropped)
        stage.tracker.forget(gone)
        for buf in dropped:
            stream._flow_counts.pop(buf.trace_id, None)
        stream.stats.rebalances += 1
        stream.stats.dropped_on_rebalance += len(dropped)

    def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        stage = self.stage
        stage.joined = True
        if stage.broken is not None:
            return  # the stage reopens from the committed offsets
        for tp in assigned:
            offset = self._rewind.get(tp)
            if offset is not None and stage.consumer is not None:
                stage.consumer.seek(tp, offset)
        self._rewind.clear()
        stage.stream.stats.assigned = sorted(f"{tp.topic}[{tp.partition}]" for tp in assigned)
        stage.stream.health[stage.name].partitions = len(assigned)


class _Joined(ConsumerRebalanceListener):  # type: ignore[misc]
    """The re-key stage's group: notes that it has joined (for ``--idle-exit``)."""

    def __init__(self, stream: SpanStream) -> None:
        self.stream = stream

    def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        pass

    def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        self.stream.rekey_joined = True
