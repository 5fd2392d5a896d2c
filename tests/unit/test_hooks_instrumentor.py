"""TracectxInstrumentor (the ``tracectx_threading`` entry point) as OTel contrib's
instrumentors behave: its ``tracer_provider`` makes the failure spans, misspelt options are
refused on every call with the valid names."""

from __future__ import annotations

import threading

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tracectx.hooks import TracectxInstrumentor


@pytest.fixture
def instrumentor():
    instrumentor = TracectxInstrumentor()
    yield instrumentor
    instrumentor.uninstrument()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_crashed_threads_failure_span_goes_to_the_given_provider(spans, instrumentor):
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrumentor.instrument(tracer_provider=provider)

    def crash():
        raise ValueError("lost in a thread")

    worker = threading.Thread(target=crash, name="crasher")
    worker.start()
    worker.join(30)
    assert [s.name for s in exporter.get_finished_spans()] == ["thread crasher"]
    assert not [s for s in spans.get_finished_spans() if s.name == "thread crasher"]


def test_misspelt_options_refused_every_time(instrumentor):
    with pytest.raises(
        TypeError, match=r"\['tracer_provder'\].*valid options: \['tracer_provider'\]"
    ):
        instrumentor.instrument(tracer_provder=TracerProvider())
    instrumentor.instrument()
    with pytest.raises(TypeError, match="tracer_provder"):  # also once instrumented
        instrumentor.instrument(tracer_provder=TracerProvider())
    instrumentor.instrument(skip_dep_check=True)  # what opentelemetry-instrument passes
