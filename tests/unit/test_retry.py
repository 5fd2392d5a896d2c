"""retry_transient: only retryable kinds, bounded attempts, original error, events on span."""

from __future__ import annotations

import pytest

from tests.helpers import all_named, by_name
from tracectx import ErrorKind, new_error, retry_transient, traced
from tracectx import semconv as sc


class TestRetry:
    def test_transient_retried_until_success_and_recorded(self, spans):
        waits: list[float] = []
        calls = []

        @retry_transient(attempts=4, initial=0.1, maximum=1.0, jitter=0.05, sleep=waits.append)
        def op():
            calls.append(1)
            if len(calls) < 3:
                raise TimeoutError("slow")
            return "ok"

        with traced("job"):
            assert op() == "ok"
        assert len(calls) == 3
        assert 0.1 <= waits[0] <= 0.15 and 0.2 <= waits[1] <= 0.25
        events = [e for e in by_name(spans, "job").events if e.name == sc.EVENT_RETRY]
        assert [e.attributes[sc.ATTR_ATTEMPT] for e in events] == [1, 2]

    def test_business_never_retried(self):
        calls = []

        @retry_transient(sleep=lambda s: None)
        def op():
            calls.append(1)
            raise new_error(ErrorKind.BUSINESS, "no")

        with pytest.raises(Exception, match="no"):
            op()
        assert len(calls) == 1

    def test_original_exception_reraised_after_last_attempt(self):
        err = TimeoutError("always")

        @retry_transient(attempts=3, sleep=lambda s: None)
        def op():
            raise err

        with pytest.raises(TimeoutError) as info:
            op()
        assert info.value is err
        assert op.statistics["attempt_number"] == 3

    def test_backoff_is_capped(self):
        waits: list[float] = []

        @retry_transient(attempts=8, initial=1, maximum=2, jitter=0, sleep=waits.append)
        def op():
            raise TimeoutError()

        with pytest.raises(TimeoutError):
            op()
        assert max(waits) == 2 and len(waits) == 7

    async def test_async(self):
        calls = []

        async def nosleep(s):
            return None

        @retry_transient(attempts=3, sleep=nosleep)
        async def op():
            calls.append(1)
            if len(calls) < 2:
                raise ConnectionResetError()
            return 5

        assert await op() == 5 and len(calls) == 2


class GatewayTimeout(TimeoutError):
    pass


def test_retry_events_spell_error_type_like_error_records(spans):
    """One spelling (`module.Qualname`) so the visualiser and queries match retries to errors."""

    @retry_transient(attempts=2, sleep=lambda s: None)
    @traced("call")
    def op():
        raise GatewayTimeout("gateway slow")

    with traced("job"), pytest.raises(GatewayTimeout):
        op()
    [event] = [e for e in by_name(spans, "job").events if e.name == sc.EVENT_RETRY]
    first_call = all_named(spans, "call")[0]
    expected = f"{__name__}.GatewayTimeout"
    assert event.attributes[sc.ATTR_ERROR_TYPE] == first_call.attributes[sc.ATTR_ERROR_TYPE]
    assert event.attributes[sc.ATTR_ERROR_TYPE] == expected


def _flaky(fail_times: int):
    calls: list[int] = []

    def op() -> str:
        calls.append(1)
        if len(calls) <= fail_times:
            raise TimeoutError(f"slow {len(calls)}")
        return "ok"

    return op, calls


class TestDecoratorOrder:
    """@retry_transient over @traced, or @traced over @retry_transient: the same spans."""

    @staticmethod
    def _decorate(order: str, fn):
        retrying = retry_transient(attempts=4, sleep=lambda s: None)
        if order == "retry outside":
            return retrying(traced("call")(fn))
        return traced("call")(retrying(fn))

    @pytest.mark.parametrize("order", ["retry outside", "traced outside"])
    def test_one_span_per_attempt_and_retry_events_on_the_callers_span(self, order, spans):
        raw, calls = _flaky(2)
        op = self._decorate(order, raw)
        with traced("job"):
            assert op() == "ok"
        job, attempts = by_name(spans, "job"), all_named(spans, "call")
        assert len(calls) == 3 and len(attempts) == 3
        assert all(a.parent.span_id == job.context.span_id for a in attempts)
        assert [a.attributes.get(sc.ATTR_ROLE) for a in attempts] == ["origin", "origin", None]
        events = [e for e in job.events if e.name == sc.EVENT_RETRY]
        assert [e.attributes[sc.ATTR_ATTEMPT] for e in events] == [1, 2]
        assert [e.attributes[sc.ATTR_ID] for e in events] == [
            a.attributes[sc.ATTR_ID] for a in attempts[:2]
        ]
        assert op.statistics["attempt_number"] == 3
        assert op.__name__ == "op"

    @pytest.mark.parametrize("order", ["retry outside", "traced outside"])
    async def test_async_either_order(self, order, spans):
        calls: list[int] = []

        async def nosleep(s):
            return None

        async def op():
            calls.append(1)
            if len(calls) < 2:
                raise ConnectionResetError()
            return 5

        retrying = retry_transient(attempts=3, sleep=nosleep)
        wrapped = (
            retrying(traced("call")(op))
            if order == "retry outside"
            else traced("call")(retrying(op))
        )
        with traced("job"):
            assert await wrapped() == 5
        assert len(all_named(spans, "call")) == 2
        events = [e for e in by_name(spans, "job").events if e.name == sc.EVENT_RETRY]
        assert len(events) == 1

    def test_a_marker_copied_onto_another_wrapper_is_ignored(self, spans):
        """functools.wraps copies attributes: traced must not unwrap someone else's wrapper."""
        import functools

        raw, _calls = _flaky(0)
        retried = retry_transient(attempts=2, sleep=lambda s: None)(raw)
        seen = []

        @functools.wraps(retried)
        def audited():
            seen.append("audit")
            return retried()

        assert traced("call")(audited)() == "ok"
        assert seen == ["audit"] and len(all_named(spans, "call")) == 1
