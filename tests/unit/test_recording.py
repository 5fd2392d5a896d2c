"""The span contract: origin, propagated, cause, absorbed; metadata redacted."""

from __future__ import annotations

import asyncio

import pytest
from opentelemetry import trace
from opentelemetry.trace import StatusCode

from tests.helpers import by_name, hex_span
from tracectx import ErrorKind, bound, mark_handled, new_error, record_error, traced
from tracectx import semconv as sc


class TestRoles:
    def test_first_span_is_origin_outer_spans_propagate(self, spans):
        with pytest.raises(Exception) as info, traced("outer"), traced("middle"), traced("inner"):
            raise new_error(ErrorKind.BUSINESS, "no funds", code="E42", account_id="a1")
        inner, middle, outer = (by_name(spans, n) for n in ("inner", "middle", "outer"))
        eid = info.value.error_id
        assert inner.attributes[sc.ATTR_ROLE] == "origin"
        assert inner.attributes[sc.ATTR_ID] == eid
        assert inner.attributes[sc.ATTR_KIND] == "BUSINESS"
        assert inner.attributes[sc.ATTR_CODE] == "E42"
        assert inner.attributes[sc.ATTR_ERROR_TYPE] == "tracectx.errors.TracedError"
        assert inner.attributes[sc.ATTR_META_PREFIX + "account_id"] == "a1"
        assert inner.status.status_code is StatusCode.ERROR
        assert [e.name for e in inner.events] == ["exception"]
        for span in (middle, outer):
            assert span.attributes[sc.ATTR_ROLE] == "propagated"
            assert span.attributes[sc.ATTR_ID] == eid
            assert span.attributes[sc.ATTR_ORIGIN_SPAN_ID] == hex_span(inner)
            assert span.status.status_code is StatusCode.ERROR
            assert not any(k.startswith(sc.ATTR_META_PREFIX) for k in span.attributes)

    def test_raise_from_gives_new_id_with_cause(self, spans):
        with pytest.raises(Exception) as info, traced("outer"):
            try:
                with traced("inner"):
                    raise TimeoutError("slow")
            except TimeoutError as exc:
                raise new_error(ErrorKind.BUSINESS, "gave up") from exc
        inner, outer = by_name(spans, "inner"), by_name(spans, "outer")
        assert outer.attributes[sc.ATTR_ROLE] == "origin"
        assert outer.attributes[sc.ATTR_ID] == info.value.error_id
        assert outer.attributes[sc.ATTR_CAUSE_ID] == inner.attributes[sc.ATTR_ID]
        assert outer.attributes[sc.ATTR_ID] != inner.attributes[sc.ATTR_ID]

    def test_handled_marks_absorber_without_error_status(self, spans):
        with traced("handler"):
            try:
                with traced("call"):
                    raise new_error(ErrorKind.BUSINESS, "rejected")
            except Exception as exc:
                mark_handled(exc)
                eid = exc.error_id
        handler = by_name(spans, "handler")
        assert handler.status.status_code is not StatusCode.ERROR
        assert handler.attributes[sc.ATTR_ROLE] == "absorbed"
        event = next(e for e in handler.events if e.name == sc.EVENT_HANDLED)
        assert event.attributes[sc.ATTR_ID] == eid

    def test_plain_exception_gets_id_and_kind(self, spans):
        with pytest.raises(TimeoutError), traced("op"):
            raise TimeoutError("x")
        op = by_name(spans, "op")
        assert op.attributes[sc.ATTR_KIND] == "TRANSIENT"
        assert op.attributes[sc.ATTR_ERROR_TYPE] == "TimeoutError"
        assert len(op.attributes[sc.ATTR_ID]) == 16

    def test_bound_metadata_lands_on_origin_redacted(self, spans):
        with bound(account_id="acc_1", api_token="s3cret"), pytest.raises(KeyError):
            with traced("op"):
                raise KeyError("k")
        attrs = by_name(spans, "op").attributes
        assert attrs[sc.ATTR_META_PREFIX + "account_id"] == "acc_1"
        assert attrs[sc.ATTR_META_PREFIX + "api_token"] == "[REDACTED]"

    def test_cancellation_is_not_an_error(self, spans):
        with pytest.raises(asyncio.CancelledError), traced("op"):
            raise asyncio.CancelledError()
        assert by_name(spans, "op").status.status_code is not StatusCode.ERROR

    def test_record_on_span_opened_by_someone_else(self, spans):
        tracer = trace.get_tracer("other-instrumentation")
        with tracer.start_as_current_span("foreign"):
            try:
                raise ValueError("bad")
            except ValueError as exc:
                assert record_error(exc) == "origin"
                assert record_error(exc) is None  # twice on one span: no-op
        assert by_name(spans, "foreign").attributes[sc.ATTR_ROLE] == "origin"


class TestDecorator:
    def test_sync_decorator_with_and_without_parens(self, spans):
        @traced
        def a():
            return 1

        @traced("named")
        def b():
            raise ValueError("x")

        assert a() == 1
        with pytest.raises(ValueError):
            b()
        assert by_name(spans, a.__qualname__).status.status_code is not StatusCode.ERROR
        assert by_name(spans, "named").attributes[sc.ATTR_ROLE] == "origin"

    async def test_async_decorator_reraises_same_object(self, spans):
        err = new_error(ErrorKind.TRANSIENT, "x")

        @traced("aop")
        async def op():
            await asyncio.sleep(0)
            raise err

        with pytest.raises(type(err)) as info:
            await op()
        assert info.value is err
        assert by_name(spans, "aop").attributes[sc.ATTR_ID] == err.error_id


class TestExceptionGroups:
    """One failure leaving a TaskGroup / except* keeps one id: the group's span propagates it."""

    async def test_taskgroup_failure_is_propagated_not_reborn(self, spans):
        async def work() -> None:
            with traced("work"):
                raise new_error(ErrorKind.TRANSIENT, "upstream down", code="E_UP")

        with pytest.raises(ExceptionGroup) as info:
            with traced("fan-out"):
                async with asyncio.TaskGroup() as tg:
                    tg.create_task(work())
        member = info.value.exceptions[0]
        work_span, fan_out = by_name(spans, "work"), by_name(spans, "fan-out")
        assert work_span.attributes[sc.ATTR_ROLE] == "origin"
        assert fan_out.attributes[sc.ATTR_ROLE] == "propagated"
        assert fan_out.attributes[sc.ATTR_ID] == member.error_id
        assert fan_out.attributes[sc.ATTR_ORIGIN_SPAN_ID] == hex_span(work_span)
        assert fan_out.attributes[sc.ATTR_KIND] == "TRANSIENT"
        assert fan_out.attributes[sc.ATTR_MEMBER_IDS] == member.error_id
        origins = [
            s for s in spans.get_finished_spans() if s.attributes.get(sc.ATTR_ROLE) == "origin"
        ]
        assert len(origins) == 1

    def test_group_without_recorded_members_is_born_once_with_member_ids(self, spans):
        first, second = ValueError("a"), KeyError("b")
        with pytest.raises(ExceptionGroup), traced("outer"), traced("inner"):
            raise ExceptionGroup("two", [first, ExceptionGroup("nested", [second])])
        inner, outer = by_name(spans, "inner"), by_name(spans, "outer")
        from tracectx import error_id

        assert inner.attributes[sc.ATTR_ROLE] == "origin"
        assert inner.attributes[sc.ATTR_ID] == error_id(first)
        assert inner.attributes[sc.ATTR_MEMBER_IDS] == f"{error_id(first)},{error_id(second)}"
        assert outer.attributes[sc.ATTR_ROLE] == "propagated"
        assert outer.attributes[sc.ATTR_ID] == error_id(first)


def test_a_plain_error_remembers_the_metadata_bound_where_it_was_born(spans):
    """The context that bound it is gone by the time the error crosses a hop."""
    from tracectx import bind, to_dict

    with pytest.raises(ValueError) as info, traced("outer"):
        with traced("work"):
            bind(sku="A1", password="p")  # the README's plain call; undone when "work" ends
            raise ValueError("bad sku")
    assert to_dict(info.value)["metadata"] == {"sku": "A1", "password": "[REDACTED]"}


class TestWhatRecordingKeeps:
    """`traced` opens its span without OTel's context-manager layers and records with less
    per-error work; what a user reads off the span and the context must not change."""

    def test_stack_is_formatted_only_where_the_kinds_policy_says(self, spans):
        with pytest.raises(Exception), traced("transient"):
            raise new_error(ErrorKind.TRANSIENT, "slow", code="T1")
        with pytest.raises(ValueError), traced("unknown"):
            raise ValueError("unexpected")
        [transient] = by_name(spans, "transient").events
        [unknown] = by_name(spans, "unknown").events
        assert "exception.stacktrace" not in transient.attributes
        assert "exception.escaped" not in transient.attributes  # deprecated by OTel semconv
        assert transient.attributes["exception.message"] == "slow"
        assert transient.attributes["exception.type"] == "tracectx.errors.TracedError"
        assert "ValueError: unexpected" in unknown.attributes["exception.stacktrace"]
        assert by_name(spans, "transient").status.description == (
            "tracectx.errors.TracedError: slow"
        )

    def test_the_context_is_restored_and_the_span_ended_on_every_way_out(self):
        from opentelemetry import context as otel_context

        before = otel_context.get_current()
        with traced("ok") as ok:
            assert trace.get_current_span() is ok
        with pytest.raises(KeyError), traced("outer") as outer, traced("inner") as inner:
            assert trace.get_current_span() is inner
            raise KeyError("k")
        with pytest.raises(asyncio.CancelledError), traced("cancelled") as cancelled:
            raise asyncio.CancelledError()
        assert otel_context.get_current() is before
        assert not any(s.is_recording() for s in (ok, outer, inner, cancelled))

    def test_each_providers_service_name_lands_in_the_origin(self):
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider

        from tracectx import configure
        from tracectx.errors import get_origin

        configure(service_name="configured")
        services = []
        for resource in (
            Resource.create({"service.name": "billing"}),
            Resource.create({"service.name": "shipping"}),
            Resource({}),
        ):
            tracer = TracerProvider(resource=resource).get_tracer("t")
            with pytest.raises(ValueError) as info, traced("op", tracer=tracer):
                raise ValueError("x")
            services.append(get_origin(info.value).service)
        assert services == ["billing", "shipping", "configured"]


class TestExceptionSignalOptIn:
    """OTEL_SEMCONV_EXCEPTION_SIGNAL_OPT_IN: `logs` replaces the exception event with a log
    record, `logs/dup` keeps both; the contract's role and id attributes stay on the span."""

    def _record(self, spans, monkeypatch, value: str | None):
        from opentelemetry.sdk._logs import LoggerProvider, export
        from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor

        # OpenTelemetry 1.38 (the declared minimum) calls it InMemoryLogExporter
        InMemoryLogRecordExporter = (
            getattr(export, "InMemoryLogRecordExporter", None) or export.InMemoryLogExporter
        )

        if value is None:
            monkeypatch.delenv("OTEL_SEMCONV_EXCEPTION_SIGNAL_OPT_IN", raising=False)
        else:
            monkeypatch.setenv("OTEL_SEMCONV_EXCEPTION_SIGNAL_OPT_IN", value)
        logs = InMemoryLogRecordExporter()
        provider = LoggerProvider()
        provider.add_log_record_processor(SimpleLogRecordProcessor(logs))
        from opentelemetry import _logs

        monkeypatch.setattr(_logs, "get_logger_provider", lambda: provider)
        with pytest.raises(ValueError), traced("op"):
            raise ValueError("boom")
        (span,) = spans.get_finished_spans()
        assert span.attributes[sc.ATTR_ROLE] == "origin"
        return [e.name for e in span.events], logs.get_finished_logs()

    def test_logs_replaces_the_event(self, spans, monkeypatch):
        events, records = self._record(spans, monkeypatch, "logs")
        assert events == [] and len(records) == 1

    def test_dup_keeps_both(self, spans, monkeypatch):
        events, records = self._record(spans, monkeypatch, "logs/dup")
        assert events == ["exception"] and len(records) == 1

    def test_unset_keeps_the_event_only(self, spans, monkeypatch):
        events, records = self._record(spans, monkeypatch, None)
        assert events == ["exception"] and records == ()


def test_handled_is_the_deprecated_spelling_of_mark_handled(spans):
    from tracectx import handled

    with traced("op"):
        with pytest.warns(DeprecationWarning, match="mark_handled"):
            handled(ValueError("x"))
    (span,) = spans.get_finished_spans()
    assert span.attributes[sc.ATTR_ROLE] == "absorbed"
