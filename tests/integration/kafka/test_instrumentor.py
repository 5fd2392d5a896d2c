"""KafkaInstrumentor hygiene, OTel contrib style: the given tracer provider (one tracer, named
after the package and its version), misspelt options refused, uninstrument undoes everything
instrument did, and a missing kafka-python is skipped quietly by ``opentelemetry-instrument``."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.helpers import all_named
from tests.integration.kafka.test_consumer import ITERATION_TIMEOUT_MS
from tracectx import traced
from tracectx.tracing import VERSION
from tracectx_kafka import KafkaInstrumentor, TracedProducer

pytestmark = pytest.mark.integration


class CountingProvider(TracerProvider):
    """An SDK provider that counts tracer look-ups."""

    lookups = 0

    def get_tracer(self, *args, **kwargs):
        self.lookups += 1
        return super().get_tracer(*args, **kwargs)


def test_tracer_provider_used_with_one_tracer_lookup(spans, bootstrap, make_topic):
    topic = make_topic()
    exporter = InMemorySpanExporter()
    provider = CountingProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrumentor = KafkaInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        producer = KafkaProducer(bootstrap_servers=bootstrap)
        for _ in range(20):
            producer.send(topic, b"v")
        producer.flush(10)
        producer.close()
        consumer = KafkaConsumer(
            bootstrap_servers=bootstrap,
            auto_offset_reset="earliest",
            consumer_timeout_ms=ITERATION_TIMEOUT_MS,
        )
        consumer.assign([TopicPartition(topic, 0)])
        for n, _record in enumerate(consumer, 1):
            if n == 20:
                break
        consumer.close()
    finally:
        instrumentor.uninstrument()
    mine = exporter.get_finished_spans()
    assert [s.name for s in mine].count(f"send {topic}") == 20
    assert [s.name for s in mine].count(f"process {topic}") == 20
    assert {(s.instrumentation_scope.name, s.instrumentation_scope.version) for s in mine} == {
        ("tracectx_kafka", VERSION)
    }
    assert not all_named(spans, f"send {topic}")  # nothing went to the global provider
    assert provider.lookups == 1


def test_default_tracer_is_named_and_cached(spans, bootstrap, make_topic, monkeypatch):
    from opentelemetry import trace

    topic = make_topic()
    producer = TracedProducer(bootstrap_servers=bootstrap)
    producer.send(topic, b"warm").get(10)
    global_provider = trace.get_tracer_provider()
    lookups = []
    original = type(global_provider).get_tracer
    monkeypatch.setattr(
        global_provider,
        "get_tracer",
        lambda *a, **kw: lookups.append(a) or original(global_provider, *a, **kw),
    )
    with traced("request"):
        for _ in range(20):
            producer.send(topic, b"v")
    producer.flush(10)
    producer.close()
    assert [a for a in lookups if a[0] == "tracectx_kafka"] == []
    sends = all_named(spans, f"send {topic}")
    assert {(s.instrumentation_scope.name, s.instrumentation_scope.version) for s in sends} == {
        ("tracectx_kafka", VERSION)
    }


def test_misspelt_option_refused_before_anything_is_patched():
    send = KafkaProducer.send
    instrumentor = KafkaInstrumentor()
    with pytest.raises(TypeError, match="tracer_provder"):
        instrumentor.instrument(tracer_provder=TracerProvider())
    assert KafkaProducer.send is send
    instrumentor.instrument(send_mode="propagate")  # still possible, and accepted
    try:
        assert KafkaProducer.send is not send
    finally:
        instrumentor.uninstrument()
    assert KafkaProducer.send is send


def run(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
    )


def test_uninstrument_removes_the_classification_it_added():
    """In a fresh process: no wrapper holds the Kafka classification there."""
    out = run(
        """
        from kafka.errors import KafkaTimeoutError, NotLeaderForPartitionError
        from tracectx import ErrorKind, classify, register_exception
        from tracectx_kafka import KafkaInstrumentor, TracedProducer

        errors = (KafkaTimeoutError(), NotLeaderForPartitionError())
        kinds = lambda: [classify(e).name for e in errors]
        instrumentor = KafkaInstrumentor()
        print(kinds())
        instrumentor.instrument()
        print(kinds())
        instrumentor.uninstrument()
        print(kinds())
        register_exception(KafkaTimeoutError, ErrorKind.BUSINESS)  # the app's own: kept
        instrumentor.instrument()
        instrumentor.uninstrument()
        print(kinds())
        """
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split("\n")[:4] == [
        "['UNKNOWN', 'UNKNOWN']",
        "['TRANSIENT', 'TRANSIENT']",
        "['UNKNOWN', 'UNKNOWN']",
        "['BUSINESS', 'UNKNOWN']",
    ]


def test_wrappers_keep_their_classification_after_uninstrument(bootstrap):
    out = run(
        f"""
        from kafka.errors import KafkaTimeoutError
        from tracectx import classify
        from tracectx_kafka import KafkaInstrumentor, trace_consumer
        from kafka import KafkaConsumer

        instrumentor = KafkaInstrumentor()
        instrumentor.instrument()
        consumer = trace_consumer(KafkaConsumer(bootstrap_servers="{bootstrap}"))
        instrumentor.uninstrument()  # the wrapped consumer still relies on the classification
        print(classify(KafkaTimeoutError()).name)
        consumer.close()
        """
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "TRANSIENT"


CLIENTS = ("kafka", "aiokafka", "confluent_kafka")


@pytest.fixture
def no_kafka(tmp_path: Path) -> str:
    """A PYTHONPATH on which importing any Kafka client fails as if none were installed."""
    for name in CLIENTS:
        fake = tmp_path / name
        fake.mkdir()
        (fake / "__init__.py").write_text(
            f"raise ModuleNotFoundError(\"No module named '{name}'\", name='{name}')\n"
        )
    return str(tmp_path)


@pytest.mark.parametrize(
    ("statement", "client"),
    [
        ("from tracectx_kafka import KafkaInstrumentor", "kafka"),
        ("from tracectx_kafka.kafka_python import TracedProducer", "kafka"),
        ("from tracectx_kafka.aiokafka import AIOKafkaInstrumentor", "aiokafka"),
        ("from tracectx_kafka.confluent import ConfluentKafkaInstrumentor", "confluent_kafka"),
    ],
)
def test_missing_client_is_module_not_found(no_kafka, statement, client):
    out = run(
        f"""
        try:
            {statement}
        except ModuleNotFoundError as exc:
            print(type(exc).__name__, exc.name, "pip install" in str(exc))
        """,
        PYTHONPATH=no_kafka,
    )
    assert out.stdout.split() == ["ModuleNotFoundError", client, "True"], out.stderr[-2000:]


def test_core_needs_no_client(no_kafka):
    """The client-neutral names import and work with no Kafka client installed (an aiokafka
    or confluent-kafka user does not need kafka-python)."""
    out = run(
        """
        from types import SimpleNamespace
        from tracectx_kafka import dlq_error, process_record, send_to_dlq, traced_records
        print(dlq_error(SimpleNamespace(headers=[("tracectx-error", b"{}")])))
        """,
        PYTHONPATH=no_kafka,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "None"


def test_opentelemetry_instrument_skips_missing_kafka_quietly(no_kafka):
    bindir = Path(sys.executable).parent
    out = subprocess.run(
        [str(bindir / "opentelemetry-instrument"), sys.executable, "-c", "print('app ran')"],
        capture_output=True,
        text=True,
        timeout=120,
        env={
            **os.environ,
            "PYTHONPATH": no_kafka,
            "OTEL_TRACES_EXPORTER": "none",
            "OTEL_METRICS_EXPORTER": "none",
            "OTEL_LOGS_EXPORTER": "none",
            "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "kafka,celery,threading",
        },
    )
    assert out.stdout.strip() == "app ran"
    assert "tracectx_kafka" not in out.stderr, out.stderr[-2000:]
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize("client", CLIENTS)
def test_misspelt_options_refused_on_every_call_with_the_valid_names(client):
    """Not only before the first instrument(): BaseInstrumentor returns early when already
    instrumented, and a typo then was silently ignored."""
    pytest.importorskip(client)
    from tracectx_kafka import KafkaInstrumentor
    from tracectx_kafka.aiokafka import AIOKafkaInstrumentor
    from tracectx_kafka.confluent import ConfluentKafkaInstrumentor

    cls = {
        "kafka": KafkaInstrumentor,
        "aiokafka": AIOKafkaInstrumentor,
        "confluent_kafka": ConfluentKafkaInstrumentor,
    }[client]
    instrumentor = cls()
    instrumentor.instrument()
    try:
        with pytest.raises(TypeError, match=r"\['sendmode'\].*valid options: .*'send_mode'"):
            instrumentor.instrument(sendmode="propagate")
    finally:
        instrumentor.uninstrument()


def test_confluent_uninstrument_removes_the_classification_after_a_client_was_built(bootstrap):
    pytest.importorskip("confluent_kafka")
    out = run(
        f"""
        from confluent_kafka import KafkaError, KafkaException
        import confluent_kafka
        from tracectx import classify
        from tracectx_kafka.confluent import ConfluentKafkaInstrumentor

        error = KafkaException(KafkaError(KafkaError._TRANSPORT, retriable=True))
        instrumentor = ConfluentKafkaInstrumentor()
        instrumentor.instrument()
        producer = confluent_kafka.Producer({{"bootstrap.servers": "{bootstrap}"}})
        consumer = confluent_kafka.Consumer({{"bootstrap.servers": "{bootstrap}", "group.id": "g"}})
        print(classify(error).name)
        instrumentor.uninstrument()
        print(classify(error).name)
        consumer.close()
        """
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["TRANSIENT", "UNKNOWN"]
