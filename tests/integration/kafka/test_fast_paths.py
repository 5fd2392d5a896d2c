"""The cheap paths give exactly what the general ones give: headers written directly for OTel's
default W3C propagators (any other propagator is still called), extracted contexts reused only
when clean (every refusal still counted), and the context-only consumer mode."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kafka import KafkaConsumer, TopicPartition
from opentelemetry import baggage, propagate, trace
from opentelemetry import context as otel_context
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.propagators.textmap import (
    CarrierT,
    Getter,
    Setter,
    TextMapPropagator,
    default_getter,
    default_setter,
)
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, TraceState
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from tests.helpers import all_named, hex_span, hex_trace
from tests.integration.kafka.rejections import Rejections
from tests.integration.kafka.test_consumer import ITERATION_TIMEOUT_MS
from tracectx import configure, traced
from tracectx.propagation import has_remote_parent
from tracectx_kafka import RecordMode, TracedConsumer, TracedProducer, trace_consumer
from tracectx_kafka.headers import EMPTY, context_from_headers, encoded

pytestmark = pytest.mark.integration

TP = b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
SC = SpanContext(
    0x0AF7651916CD43DD8448EB211C80319C,
    0xB7AD6B7169203331,
    is_remote=False,
    trace_flags=TraceFlags(1),
)


class Custom(TextMapPropagator):
    """A propagator of its own: writes ``x-custom`` and reads it back as baggage."""

    def inject(
        self, carrier: CarrierT, context: Context | None = None, setter: Setter = default_setter
    ) -> None:
        sc = trace.get_current_span(context).get_span_context()
        setter.set(carrier, "x-custom", f"{sc.span_id:x}")

    def extract(
        self, carrier: CarrierT, context: Context | None = None, getter: Getter = default_getter
    ) -> Context:
        found = getter.get(carrier, "x-custom")
        return baggage.set_baggage("custom", found[0], context) if found else (context or Context())

    @property
    def fields(self) -> set[str]:
        return {"x-custom"}


@pytest.fixture
def textmap() -> Iterator[None]:
    before = propagate.get_global_textmap()
    yield
    propagate.set_global_textmap(before)


def inject_headers(ctx: Context) -> list[tuple[str, bytes]]:
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=ctx)
    return [(k, v.encode()) for k, v in carrier.items()]


CONTEXTS = {
    "span": trace.set_span_in_context(NonRecordingSpan(SC)),
    "sampled_out": trace.set_span_in_context(
        NonRecordingSpan(SpanContext(SC.trace_id, SC.span_id, False, TraceFlags(0)))
    ),
    "tracestate": trace.set_span_in_context(
        NonRecordingSpan(
            SpanContext(SC.trace_id, SC.span_id, False, TraceFlags(1), TraceState([("v", "1")]))
        )
    ),
    "baggage": baggage.set_baggage("k", "a b,c", trace.set_span_in_context(NonRecordingSpan(SC))),
    "baggage_only": baggage.set_baggage("k", "v", Context()),
    "nothing": Context(),
}


@pytest.mark.parametrize("name", list(CONTEXTS))
@pytest.mark.parametrize(
    "propagator",
    [
        None,  # the default composite
        CompositePropagator([W3CBaggagePropagator(), TraceContextTextMapPropagator()]),
        TraceContextTextMapPropagator(),
        CompositePropagator([TraceContextTextMapPropagator(), Custom()]),
        Custom(),
    ],
    ids=["default", "reversed", "tracecontext", "with_custom", "custom"],
)
def test_encoded_headers_are_what_the_global_propagator_writes(textmap, name, propagator):
    if propagator is not None:
        propagate.set_global_textmap(propagator)
    ctx = CONTEXTS[name]
    assert encoded(ctx) == inject_headers(ctx)
    # as if a span were the context's current span (send spans are never made current)
    span = NonRecordingSpan(SC)
    assert encoded(ctx, span) == inject_headers(trace.set_span_in_context(span, ctx))


def test_no_empty_baggage_and_one_traceparent():
    assert [k for k, _ in encoded(CONTEXTS["span"])] == ["traceparent"]
    assert encoded(Context()) == []


def test_a_custom_propagator_is_used_to_read_too(textmap):
    propagate.set_global_textmap(CompositePropagator([TraceContextTextMapPropagator(), Custom()]))
    ctx = context_from_headers([("traceparent", TP), ("x-custom", b"abc")])
    assert has_remote_parent(ctx)
    assert baggage.get_baggage("custom", ctx) == "abc"
    # headers the W3C propagators would not read are not skipped for another propagator
    assert baggage.get_baggage("custom", context_from_headers([("x-custom", b"d")])) == "d"


class TestExtractedContexts:
    def test_same_header_bytes_give_the_same_context(self):
        first = context_from_headers([("traceparent", TP)])
        assert has_remote_parent(first)
        assert context_from_headers([("traceparent", TP), ("app", b"x")]) is first

    def test_records_without_propagation_headers_extract_nothing(self):
        assert context_from_headers([]) is EMPTY
        assert context_from_headers([("app", b"x"), ("tracestate", b"a=b")]) is EMPTY

    @pytest.mark.parametrize(
        "headers",
        [
            [("traceparent", b"00-zz-yy-01")],
            [("traceparent", TP), ("baggage", b"k=" + b"v" * 100_000)],
            [("traceparent", TP), ("baggage", b"ok=1,bad key=2")],
            [("traceparent", TP), ("traceparent", TP.replace(b"b7ad", b"c7ad"))],
            [("traceparent", TP), ("TraceParent", TP.replace(b"b7ad", b"c7ad"))],
            [("traceparent", None)],
            [("traceparent", TP), ("baggage", None)],
            [("traceparent", bytearray(b"\xff"))],
        ],
        ids=[
            "malformed",
            "huge_baggage",
            "malformed_baggage",
            "duplicate",
            "duplicate_spelling",
            "none",
            "none_bag",
            "utf8",
        ],
    )
    def test_a_refused_header_is_counted_on_every_record(self, headers):
        with Rejections() as counted:
            for _ in range(3):
                context_from_headers(headers)
        assert sum(counted.delta.values()) == 3

    def test_a_change_of_settings_is_honoured(self):
        headers = [("traceparent", TP), ("baggage", b"account_id=acc_1")]
        assert baggage.get_baggage("account_id", context_from_headers(headers)) == "acc_1"
        # propagated but not trusted: an inbound value is dropped (sanitize_baggage)
        configure(propagate_keys=["account_id"])
        assert baggage.get_baggage("account_id", context_from_headers(headers)) is None


def produce(bootstrap: str, topic: str, names: list[str]) -> list[tuple[str, str]]:
    """One record sent inside each named span; the (trace, span) ids of those spans."""
    producer = TracedProducer(bootstrap_servers=bootstrap, send_mode="propagate")
    ids = []
    for name in names:
        with traced(name) as span:
            producer.send(topic, name.encode())
            sc = span.get_span_context()
            ids.append((f"{sc.trace_id:032x}", f"{sc.span_id:016x}"))
    producer.send(topic, b"no context")  # sent outside any span: no headers
    producer.flush(10)
    producer.close()
    return ids


def current() -> tuple[str, str]:
    sc = trace.get_current_span().get_span_context()
    return f"{sc.trace_id:032x}", f"{sc.span_id:016x}"


class TestContextMode:
    def consumer(self, bootstrap: str, topic: str, **kw):
        consumer = TracedConsumer(
            bootstrap_servers=bootstrap,
            auto_offset_reset="earliest",
            consumer_timeout_ms=ITERATION_TIMEOUT_MS,
            record_mode="context",
            **kw,
        )
        consumer.assign([TopicPartition(topic, 0)])
        return consumer

    def test_each_record_runs_in_its_producers_context_without_a_span(
        self, spans, bootstrap, make_topic
    ):
        topic = make_topic()
        sent = produce(bootstrap, topic, ["a", "b"])
        spans.clear()
        before = otel_context.get_current()
        consumer = self.consumer(bootstrap, topic)
        seen = []
        for record in consumer:
            seen.append(current())
            if record.value == b"no context":
                break
        consumer.close()
        assert seen[:2] == sent
        assert seen[2] == ("0" * 32, "0" * 16)  # the consumer's own (empty) context
        assert otel_context.get_current() is before
        assert spans.get_finished_spans() == ()

    def test_what_a_handler_attaches_ends_with_its_record_also_when_it_raises(
        self, bootstrap, make_topic
    ):
        topic = make_topic()
        sent = produce(bootstrap, topic, ["a", "b"])
        before = otel_context.get_current()
        consumer = self.consumer(bootstrap, topic)
        with pytest.raises(RuntimeError), consumer:
            for _ in consumer:
                otel_context.attach(otel_context.set_value("leak", 1))
                assert current() == sent[0]
                raise RuntimeError("handler failed")
        assert otel_context.get_current() is before

    def test_trace_consumer_and_the_instrumentor_option(self, spans, bootstrap, make_topic):
        from tracectx_kafka import KafkaInstrumentor

        topic = make_topic()
        sent = produce(bootstrap, topic, ["a"])
        spans.clear()
        plain = KafkaConsumer(
            bootstrap_servers=bootstrap,
            auto_offset_reset="earliest",
            consumer_timeout_ms=ITERATION_TIMEOUT_MS,
        )
        consumer = trace_consumer(plain, record_mode=RecordMode.CONTEXT)
        consumer.assign([TopicPartition(topic, 0)])
        assert current_of_first(consumer) == sent[0]
        consumer.close()
        instrumentor = KafkaInstrumentor()
        instrumentor.instrument(record_mode="context")
        try:
            other = KafkaConsumer(
                bootstrap_servers=bootstrap,
                auto_offset_reset="earliest",
                consumer_timeout_ms=ITERATION_TIMEOUT_MS,
            )
            other.assign([TopicPartition(topic, 0)])
            assert current_of_first(other) == sent[0]
            other.close()
        finally:
            instrumentor.uninstrument()
        assert all_named(spans, f"process {topic}") == []

    def test_poll_batches_make_no_span_and_traced_records_no_process_span(
        self, spans, bootstrap, make_topic
    ):
        from tracectx_kafka import traced_records

        topic = make_topic()
        sent = produce(bootstrap, topic, ["a", "b"])
        spans.clear()
        consumer = self.consumer(bootstrap, topic)
        got = []
        for _ in range(50):
            got.extend(r for batch in consumer.poll(timeout_ms=200).values() for r in batch)
            if len(got) >= 3:
                break
        seen = [current() for _ in traced_records(got, consumer)]
        consumer.close()
        assert seen[:2] == sent
        assert spans.get_finished_spans() == ()


def current_of_first(consumer) -> tuple[str, str]:
    next(consumer)
    return current()


def test_span_mode_still_parents_on_the_cached_context(spans, bootstrap, make_topic):
    """Two records from one context share one extracted context; each still gets its own
    process span, a child of the producer's span."""
    topic = make_topic()
    producer = TracedProducer(bootstrap_servers=bootstrap, send_mode="propagate")
    with traced("request") as request:
        producer.send(topic, b"1")
        producer.send(topic, b"2")
    producer.flush(10)
    producer.close()
    consumer = TracedConsumer(
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        consumer_timeout_ms=ITERATION_TIMEOUT_MS,
    )
    consumer.assign([TopicPartition(topic, 0)])
    for seen, _ in enumerate(consumer, 1):
        if seen == 2:
            break
    consumer.close()
    processes = all_named(spans, f"process {topic}")
    (req,) = all_named(spans, "request")
    assert len(processes) == 2
    assert {hex_trace(p) for p in processes} == {hex_trace(req)}
    assert {f"{p.parent.span_id:016x}" for p in processes} == {hex_span(req)}
    assert request.get_span_context().trace_id == req.context.trace_id


def test_a_record_scope_is_left_only_where_it_was_entered():
    """Leaving from another thread touches nothing; leaving drops what was attached on top;
    leaving twice is harmless."""
    import threading

    from tracectx_kafka.scope import enter, leave

    before = otel_context.get_current()
    entered = enter(trace.set_span_in_context(NonRecordingSpan(SC)))
    otel_context.attach(otel_context.set_value("on-top", 1))
    other = threading.Thread(target=leave, args=(entered,))
    other.start()
    other.join()
    assert trace.get_current_span().get_span_context() == SC
    leave(entered)
    leave(entered)
    assert otel_context.get_current() is before
