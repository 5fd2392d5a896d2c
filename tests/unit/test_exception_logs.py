"""Exceptions as OTel log records (``OTEL_SEMCONV_EXCEPTION_SIGNAL_OPT_IN``), through the real
OTel logs SDK: what the record carries, its context and severity, and which signal is chosen."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry._logs import SeverityNumber
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor

try:
    from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
except ImportError:  # OpenTelemetry < 1.39 (the declared minimum is 1.38) names it so
    from opentelemetry.sdk._logs.export import (  # type: ignore[attr-defined,no-redef]
        InMemoryLogExporter as InMemoryLogRecordExporter,
    )
from opentelemetry.sdk.trace import TracerProvider

from tracectx import ErrorKind, error_id, exception_logs, new_error
from tracectx import semconv as sc
from tracectx.exception_logs import ENV_VAR, EVENT_NAME, Signal, emit, record_exception, signal

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def logs() -> Iterator[tuple[LoggerProvider, InMemoryLogRecordExporter]]:
    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider()
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    yield provider, exporter
    provider.shutdown()


@pytest.fixture
def span() -> Iterator[object]:
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("work") as current:
        yield current


def raised(exc: BaseException) -> BaseException:
    try:
        raise exc
    except BaseException as caught:
        return caught


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, Signal(events=True, logs=False)),
        ("", Signal(events=True, logs=False)),
        ("logs", Signal(events=False, logs=True)),
        ("logs/dup", Signal(events=True, logs=True)),
        ("http, LOGS/dup ", Signal(events=True, logs=True)),  # a list, as other opt-ins are
        ("logs,logs/dup", Signal(events=True, logs=True)),  # dup wins
        ("log", Signal(events=True, logs=False)),  # not a value the spec knows: as before
    ],
)
def test_signal_follows_the_env_var(monkeypatch, value, expected):
    if value is None:
        monkeypatch.delenv(ENV_VAR, raising=False)
    else:
        monkeypatch.setenv(ENV_VAR, value)
    assert signal() == expected


def test_signal_notices_a_changed_value(monkeypatch):
    monkeypatch.setenv(ENV_VAR, "logs")
    assert signal().logs and not signal().events
    monkeypatch.delenv(ENV_VAR)
    assert signal() == Signal(events=True, logs=False)


def test_record_carries_the_events_attributes_in_the_spans_context(logs, span):
    provider, exporter = logs
    exc = raised(ValueError("cannot parse order 7"))
    eid = error_id(exc)
    emit(span, exc, eid, ErrorKind.UNKNOWN, logger_provider=provider)
    (finished,) = exporter.get_finished_logs()
    record = finished.log_record
    ctx = span.get_span_context()
    assert (record.trace_id, record.span_id) == (ctx.trace_id, ctx.span_id)
    assert record.event_name == EVENT_NAME
    attrs = dict(record.attributes)
    assert attrs[sc.EXC_TYPE] == "ValueError"
    assert attrs[sc.EXC_MESSAGE] == "cannot parse order 7"
    assert attrs[sc.ATTR_ID] == eid
    assert (attrs[sc.ATTR_KIND], attrs[sc.ATTR_CODE]) == ("UNKNOWN", "unknown")
    assert "raise exc" in attrs[sc.EXC_STACKTRACE]  # UNKNOWN's policy records stacks
    assert attrs[sc.EXC_STACKTRACE].rstrip().endswith("ValueError: cannot parse order 7")
    assert record.body == "ValueError: cannot parse order 7"
    assert record.severity_number is SeverityNumber.ERROR
    assert finished.instrumentation_scope.name == "tracectx"


def test_kinds_without_stacks_get_none_and_code_is_the_errors(logs, span):
    provider, exporter = logs
    exc = raised(new_error(ErrorKind.BUSINESS, "card declined", code="E42"))
    emit(span, exc, error_id(exc), ErrorKind.BUSINESS, logger_provider=provider)
    attrs = dict(exporter.get_finished_logs()[0].log_record.attributes)
    assert sc.EXC_STACKTRACE not in attrs
    assert (attrs[sc.ATTR_KIND], attrs[sc.ATTR_CODE]) == ("BUSINESS", "E42")


@pytest.mark.parametrize(
    ("kind", "severity"),
    [
        (ErrorKind.TRANSIENT, SeverityNumber.WARN),  # retried: not above Warn, as semconv asks
        (ErrorKind.BUSINESS, SeverityNumber.ERROR),
        (ErrorKind.UNKNOWN, SeverityNumber.ERROR),
        (ErrorKind.FATAL, SeverityNumber.FATAL),
    ],
)
def test_severity_is_the_kinds_log_level(logs, span, kind, severity):
    provider, exporter = logs
    exc = raised(RuntimeError("x"))
    emit(span, exc, error_id(exc), kind, logger_provider=provider)
    record = exporter.get_finished_logs()[0].log_record
    assert (record.severity_number, record.severity_text) == (severity, severity.name)


def test_body_bounded_attributes_keep_the_whole_message(logs, span):
    provider, exporter = logs
    exc = raised(ValueError("m" * 5000))
    emit(span, exc, error_id(exc), ErrorKind.UNKNOWN, logger_provider=provider)
    record = exporter.get_finished_logs()[0].log_record
    assert len(record.body) == exception_logs.MAX_BODY
    assert record.attributes[sc.EXC_MESSAGE] == "m" * 5000


def test_a_failing_logs_pipeline_never_raises_into_the_app(monkeypatch, span):
    def broken(*_, **__):
        raise RuntimeError("exporter exploded")

    monkeypatch.setenv(ENV_VAR, "logs/dup")
    monkeypatch.setattr(exception_logs, "emit", broken)
    exc = raised(ValueError("the app's own error"))
    assert record_exception(span, exc, error_id(exc), ErrorKind.UNKNOWN) is True


GLOBAL_PROVIDER_SCRIPT = textwrap.dedent(
    """
    import json
    from opentelemetry import _logs, trace
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs import export
    from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
    from opentelemetry.sdk.trace import TracerProvider
    from tracectx import ErrorKind, error_id
    from tracectx.exception_logs import record_exception

    exporter = (getattr(export, "InMemoryLogRecordExporter", None) or export.InMemoryLogExporter)()
    provider = LoggerProvider()
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    _logs.set_logger_provider(provider)
    with TracerProvider().get_tracer("app").start_as_current_span("work") as span:
        exc = ValueError("boom")
        keep_event = record_exception(span, exc, error_id(exc), ErrorKind.UNKNOWN)
        ctx = span.get_span_context()
    print(json.dumps({
        "keep_event": keep_event,
        "records": [
            {"event_name": r.log_record.event_name, "span_id": r.log_record.span_id,
             "id": r.log_record.attributes["tracectx.error.id"]}
            for r in exporter.get_finished_logs()
        ],
        "span_id": ctx.span_id,
        "error_id": error_id(exc),
    }))
    """
)


@pytest.mark.parametrize(
    ("value", "keep_event", "records"),
    [("logs", False, 1), ("logs/dup", True, 1), (None, True, 0)],
)
def test_record_exception_with_the_apps_global_logger_provider(value, keep_event, records):
    """As an app runs it: the env var set before start, the global LoggerProvider configured."""
    env = {k: v for k, v in os.environ.items() if k != ENV_VAR}
    if value is not None:
        env[ENV_VAR] = value
    out = subprocess.run(
        [sys.executable, "-c", GLOBAL_PROVIDER_SCRIPT],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    result = json.loads(out.stdout)
    assert result["keep_event"] is keep_event
    assert len(result["records"]) == records
    for record in result["records"]:
        assert record == {
            "event_name": EVENT_NAME,
            "span_id": result["span_id"],
            "id": result["error_id"],
        }


def _sdk_takes_exception() -> bool:
    import inspect

    from opentelemetry.sdk._logs import Logger

    return "exception" in inspect.signature(Logger.emit).parameters


@pytest.mark.skipif(not _sdk_takes_exception(), reason="the SDK takes exception= from 1.42")
def test_the_exception_instance_goes_to_the_sdk(logs, span):
    """The conventions ask for the exception itself on the record, where the SDK takes one."""
    provider, exporter = logs
    exc = raised(ValueError("cannot parse order 7"))
    emit(span, exc, error_id(exc), ErrorKind.UNKNOWN, logger_provider=provider)
    record = exporter.get_finished_logs()[0].log_record
    assert record.exception is exc
    assert record.attributes[sc.EXC_TYPE] == "ValueError"  # tracectx's type name is kept


def test_a_logger_without_exception_keyword_still_gets_the_record(span):
    """A logger written against OpenTelemetry 1.38-1.41 (no ``exception=``) gets the record."""
    from opentelemetry._logs import Logger, LoggerProvider

    got: list[dict[str, object]] = []

    class OldLogger(Logger):
        def emit(self, record=None, *, timestamp=None, observed_timestamp=None, context=None,
                 severity_number=None, severity_text=None, body=None, attributes=None,
                 event_name=None):  # fmt: skip
            got.append({"body": body, "event_name": event_name})

        def enabled(self, **_):
            return True

    class OldProvider(LoggerProvider):
        def get_logger(self, name, version=None, schema_url=None, attributes=None):
            return OldLogger(name)

    exc = raised(ValueError("x"))
    emit(span, exc, error_id(exc), ErrorKind.UNKNOWN, logger_provider=OldProvider())
    assert got == [{"body": "ValueError: x", "event_name": EVENT_NAME}]


def test_event_name_is_specific_not_the_generic_exception():
    """Semconv (exceptions in logs, "event name considerations"): a category name, not
    ``exception``; messaging defines no exception event of its own."""
    assert EVENT_NAME == "tracectx.error.exception" != "exception"
