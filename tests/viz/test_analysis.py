"""Error origins, propagators, absorbers, retries and async hops rebuilt from real SDK spans."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from tests.fuzz.bounds import BUDGET, bounded
from tracectx import ErrorKind, new_error, retry_transient, traced
from tracectx.executors import ContextThread
from tracectx.viz import analyse, flow_graph
from tracectx.viz.analysis import OUTCOMES
from tracectx.viz.model import Link, Span, SpanEvent, SpanSet
from tracectx.viz.sources.memory import from_readable_spans


def _by_name(analysis, name):
    return next(s for s in analysis.spans.values() if s.name == name)


def _error_at(analysis, name):
    sid = _by_name(analysis, name).span_id
    return next(e for e in analysis.errors if e.origin == sid)


class TestExactPaths:
    def test_business_error_absorbed_by_the_span_that_handled_it(self, pipeline_spans):
        [a] = analyse(pipeline_spans)
        err = _error_at(a, "debit")
        assert (err.kind, err.code, err.exact) == ("BUSINESS", "E_FUNDS", True)
        assert err.metadata == {"account_id": "a1"}
        assert err.absorber == _by_name(a, "pay").span_id and not err.escaped

    def test_thread_pool_error_climbs_to_the_fanout_span(self, pipeline_spans):
        [a] = analyse(pipeline_spans)
        err = _error_at(a, "worker")
        assert err.error_type == "ZeroDivisionError"
        assert err.absorber == _by_name(a, "fanout").span_id

    def test_retries_are_grouped(self, pipeline_spans):
        [a] = analyse(pipeline_spans)
        [group] = [g for g in a.retries if g.name == "reserve"]
        assert (len(group.attempts), group.failed, group.succeeded) == (2, 1, True)

    def test_consumer_error_is_its_own_origin_not_the_producers(self, pipeline_spans):
        [a] = analyse(pipeline_spans)
        err = _error_at(a, "handle")
        consume, publish = _by_name(a, "consume"), _by_name(a, "publish")
        assert err.absorber == consume.span_id
        assert not any(e.origin == publish.span_id for e in a.errors)
        assert any(
            e.source == publish.span_id and e.target == consume.span_id for e in a.async_edges
        )

    def test_fatal_escapes_its_span_but_is_absorbed_by_the_request(self, pipeline_spans):
        [a] = analyse(pipeline_spans)
        err = _error_at(a, "boot")
        assert err.kind == "FATAL" and err.absorber == _by_name(a, "request").span_id


def _span(sid, parent=None, error=False, name=None, kind="internal", trace="a" * 32, **attrs):
    return Span(
        trace, sid, parent, name or sid, "svc", 0, 1, error=error, kind=kind, attributes=attrs
    )


class TestInferredPaths:
    def test_deepest_errored_span_is_the_origin(self):
        spans = [
            _span("0" * 15 + "1"),
            _span("0" * 15 + "2", "0" * 15 + "1", error=True),
            _span("0" * 15 + "3", "0" * 15 + "2", error=True),
        ]
        [a] = analyse(spans)
        [err] = a.errors
        assert err.origin == "0" * 15 + "3" and err.propagators == ["0" * 15 + "2"]
        assert err.absorber == "0" * 15 + "1" and not err.exact

    def test_error_reaching_root_escapes(self):
        [a] = analyse([_span("1" * 16, error=True)])
        assert a.errors[0].escaped


class TestBrokenInput:
    def test_missing_parent_duplicates_and_cycles_are_listed_not_raised(self):
        spans = [
            _span("a" * 16, "f" * 16, error=True),  # missing parent
            _span("b" * 16, "c" * 16),
            _span("c" * 16, "b" * 16, error=True),  # cycle b <-> c
            _span("b" * 16, name="dup"),
        ]
        [a] = analyse(SpanSet(spans, ["upstream problem"]))
        text = " ".join(a.problems)
        assert "missing parent" in text and "duplicate span id" in text and "cycle" in text
        assert "upstream problem" in text
        assert a.errors

    def test_mixed_traces_are_split(self):
        spans = [_span("1" * 16, trace="1" * 32), _span("2" * 16, trace="2" * 32, error=True)]
        assert sorted(a.trace_id for a in analyse(spans)) == ["1" * 32, "2" * 32]


class TestWorkDone:
    """The contract is read only off spans that can matter to a path (the analysis runs on
    every span of a stream: a trace with no error must cost next to nothing)."""

    @staticmethod
    def _tree(failing_leaf: bool) -> list[Span]:
        ids = [f"{i + 1:016x}" for i in range(40)]
        spans = [
            _span(sid, ids[(i - 1) // 2] if i else None, kind="server", **{"http.status_code": 200})
            for i, sid in enumerate(ids)
        ]
        spans[-1].error = failing_leaf
        return spans

    @pytest.fixture
    def reads(self, monkeypatch):
        from tracectx.viz import analysis

        seen: list[object] = []
        real = analysis.read_contract

        def counting(attributes, events=(), status_message=""):
            seen.append(attributes)
            return real(attributes, events, status_message)

        monkeypatch.setattr(analysis, "read_contract", counting)
        return seen

    def test_a_trace_without_errors_reads_no_contract(self, reads):
        [a] = analyse(self._tree(failing_leaf=False))
        assert a.errors == [] and a.retries == [] and len(a.spans) == 40
        assert reads == []

    def test_only_the_failing_span_is_read(self, reads):
        spans = self._tree(failing_leaf=True)
        [a] = analyse(spans)
        [err] = a.errors
        assert err.origin == spans[-1].span_id and err.outcome == "absorbed"
        assert reads == [spans[-1].attributes]


def test_flow_graph_counts_across_traces(spans):
    from tests.viz.conftest import produce_pipeline

    produce_pipeline()
    produce_pipeline()
    graph = flow_graph(analyse(from_readable_spans(spans.get_finished_spans())))
    assert graph.origins["tracectx-test: debit"] == 2
    assert graph.edges[("tracectx-test: debit", "tracectx-test: pay")] == 2
    assert graph.edge_kinds[("tracectx-test: debit", "tracectx-test: pay")]["BUSINESS"] == 2


# -- plain OTel traces from the real SDK (record_exception + ERROR status, no tracectx) --------


def _plain(spans) -> object:
    [a] = analyse(from_readable_spans(spans.get_finished_spans()))
    return a


def _ids(analysis, *names):
    return [_by_name(analysis, n).span_id for n in names]


class TestPlainOtel:
    def test_recovered_retry_is_absorbed_when_the_parent_fails_for_another_reason(self, spans):
        tracer = trace.get_tracer("plain")
        with pytest.raises(KeyError), tracer.start_as_current_span("job"):
            for attempt in range(2):
                try:
                    with tracer.start_as_current_span("fetch"):
                        if attempt == 0:
                            raise TimeoutError("fetch timed out")
                    break
                except TimeoutError:
                    pass
            raise KeyError("missing template")  # later, outside any except block
        a = _plain(spans)
        [first, _] = [s for s in a.spans.values() if s.name == "fetch"]
        retried = next(e for e in a.errors if e.origin == first.span_id)
        assert retried.outcome == "absorbed" and retried.absorber == _ids(a, "job")[0]
        assert not retried.escaped and any("retried" in ev for ev in retried.evidence)
        own = _error_at(a, "job")
        assert own.outcome == "escaped" and own.error_type == "KeyError"

    def test_absorb_then_fail_is_two_paths(self, spans):
        tracer = trace.get_tracer("plain")
        with pytest.raises(ValueError), tracer.start_as_current_span("order"):
            try:
                with tracer.start_as_current_span("charge"):
                    raise ConnectionError("gateway down")
            except ConnectionError:
                with tracer.start_as_current_span("notify"):
                    pass
            raise ValueError("totals do not match")
        a = _plain(spans)
        charge, order = _error_at(a, "charge"), _error_at(a, "order")
        assert charge.outcome == "absorbed" and charge.absorber == order.origin
        assert order.propagators == [] and order.outcome == "escaped"

    def test_error_raised_while_handling_is_new_but_raise_from_is_followed(self, spans):
        tracer = trace.get_tracer("plain")
        with pytest.raises(RuntimeError), tracer.start_as_current_span("outer"):
            try:
                with tracer.start_as_current_span("handler"):
                    try:
                        with tracer.start_as_current_span("db"):
                            raise TimeoutError("db slow")
                    except TimeoutError:
                        raise LookupError("no cached copy either")  # noqa: B904 (implicit context)
            except LookupError as exc:
                raise RuntimeError("lookup failed") from exc
        a = _plain(spans)
        db = _error_at(a, "db")
        assert db.outcome == "absorbed" and db.absorber == _ids(a, "handler")[0]
        handler = _error_at(a, "handler")  # its own error, translated at `outer`, escapes
        assert handler.propagators == _ids(a, "outer") and handler.outcome == "escaped"
        assert any("raised from" in ev for ev in handler.evidence)
        assert not handler.exact and 0 < handler.confidence < 1
        assert len(a.errors) == 2

    def test_work_that_outlives_its_parent_is_unobserved_not_absorbed(self, spans):
        tracer = trace.get_tracer("plain")
        with tracer.start_as_current_span("request") as request:
            ctx = trace.set_span_in_context(request)
        background = tracer.start_span("audit", context=ctx)  # starts in, ends after request
        with trace.use_span(background, end_on_exit=True, record_exception=True):
            try:
                raise KeyError("audit template missing")
            except KeyError as exc:
                background.record_exception(exc)
                background.set_status(trace.Status(trace.StatusCode.ERROR, "KeyError"))
        a = _plain(spans)
        err = _error_at(a, "audit")
        assert (err.outcome, err.absorber, err.escaped) == ("unobserved", None, False)
        graph = flow_graph([a])
        assert graph.unobserved["tracectx-test: request"] == 1
        assert not graph.edges and not graph.absorbed

    def test_http_error_answer_continues_into_the_callers_error(self, spans):
        tracer = trace.get_tracer("plain")
        with pytest.raises(RuntimeError), tracer.start_as_current_span("checkout"):
            with tracer.start_as_current_span("GET /stock", kind=SpanKind.CLIENT) as client:
                with tracer.start_as_current_span("GET /stock", kind=SpanKind.SERVER) as server:
                    try:
                        with tracer.start_as_current_span("SELECT stock"):
                            raise TimeoutError("query timed out")
                    except TimeoutError as exc:  # the framework answers 500
                        server.record_exception(exc)
                        server.set_status(trace.Status(trace.StatusCode.ERROR, str(exc)))
                        server.set_attribute("http.response.status_code", 500)
                client.set_attribute("http.response.status_code", 500)
                client.set_status(trace.Status(trace.StatusCode.ERROR))
            raise RuntimeError("Server error '500' for url 'http://stock/'")  # raise_for_status
        a = _plain(spans)
        [err] = a.errors
        assert _by_name(a, "SELECT stock").span_id == err.origin
        assert [a.spans[s].kind for s in err.propagators] == ["server", "client", "internal"]
        assert err.outcome == "escaped"


# -- tracectx ids: outcome, translation, fire-and-forget ---------------------------------------


class TestExactOutcomes:
    def test_exact_paths_say_so(self, pipeline_spans):
        [a] = analyse(pipeline_spans)
        err = _error_at(a, "debit")
        assert err.exact and err.confidence == 1.0 and err.outcome == "absorbed"
        assert any("handled mark" in ev for ev in err.evidence)
        assert all(e.outcome in OUTCOMES for e in a.errors)
        assert all((e.outcome == "escaped") == e.escaped for e in a.errors)
        assert all((e.outcome == "absorbed") == (e.absorber is not None) for e in a.errors)

    def test_raise_from_is_one_path_across_error_ids(self, spans):
        with pytest.raises(RuntimeError), traced("api"), traced("service"):
            try:
                with traced("repo"):
                    raise TimeoutError("db slow")
            except TimeoutError as exc:
                raise RuntimeError("service unavailable") from exc
        a = _plain(spans)
        [err] = a.errors
        assert err.exact and err.origin == _by_name(a, "repo").span_id
        assert err.propagators == _ids(a, "service", "api") and err.outcome == "escaped"
        assert any("translated at" in ev for ev in err.evidence)

    @pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
    def test_unjoined_thread_failure_is_unobserved(self, spans):
        def boom() -> None:
            raise new_error(ErrorKind.BUSINESS, "thread failed")

        with traced("starter"):
            thread = ContextThread(target=boom, name="bg")
            thread.start()
        thread.join()
        a = _plain(spans)
        err = _error_at(a, "thread bg")
        assert err.exact and (err.outcome, err.absorber) == ("unobserved", None)
        graph = flow_graph([a])
        assert graph.unobserved["tracectx-test: starter"] == 1 and not graph.absorbed
        assert not graph.edges


# -- issue 25: what the conventions and the structure say, not names -------------------------


def _at(sid, parent=None, start=0, end=10, **kw):
    """A span of one trace with a time range (µs-free integers are fine for the analysis)."""
    attrs = kw.pop("attrs", {})
    return Span(
        "c" * 32, sid, parent, kw.pop("name", sid), "svc", start, end, attributes=attrs, **kw
    )


class TestHttpConventions:
    """4xx is an error on CLIENT spans, not on SERVER spans; 5xx on both; explicit status wins."""

    def test_a_readiness_probe_answered_404_is_no_error(self):
        probe = _at(
            "1" * 16, name="GET /ready", kind="server", attrs={"http.response.status_code": 404}
        )
        [a] = analyse([probe])
        assert a.errors == []

    def test_a_4xx_server_is_the_origin_of_its_clients_error(self):
        spans = [
            _at("1" * 16, end=100, name="checkout"),
            _at(
                "2" * 16,
                "1" * 16,
                10,
                50,
                kind="client",
                error=True,
                attrs={"http.response.status_code": 404},
            ),
            _at(
                "3" * 16, "2" * 16, 20, 40, kind="server", attrs={"http.response.status_code": 404}
            ),
        ]
        [a] = analyse(spans)
        [err] = a.errors
        assert err.origin == "3" * 16 and err.propagators == ["2" * 16]
        assert err.error_type == "HTTP 404" and err.outcome == "absorbed"
        assert any("answer HTTP 404" in ev for ev in err.evidence)

    def test_a_4xx_server_that_absorbed_its_childs_error_does_not_carry_it(self):
        """The exception a 4xx server recorded (no error status) was turned into its answer."""
        server = _at(
            "3" * 16, "2" * 16, 20, 40, kind="server", attrs={"http.response.status_code": 422}
        )
        server.events = [
            SpanEvent("exception", {"exception.type": "ValueError", "exception.message": "bad sku"})
        ]
        spans = [
            _at("1" * 16, end=100, name="checkout"),
            _at(
                "2" * 16,
                "1" * 16,
                10,
                50,
                kind="client",
                error=True,
                attrs={"http.response.status_code": 422},
            ),
            server,
            _at("4" * 16, "3" * 16, 21, 25, error=True, status_message="ValueError: bad sku"),
        ]
        [a] = analyse(spans)
        child = next(e for e in a.errors if e.origin == "4" * 16)
        assert child.propagators == [] and child.absorber == "3" * 16

    def test_a_4xx_server_whose_call_got_a_5xx_gave_its_own_verdict(self):
        """A dependency's 500 that escaped would be answered 500: a 422 is the server's own."""
        code = "http.response.status_code"
        spans = [
            _at("1" * 16, end=100, name="checkout"),
            _at("2" * 16, "1" * 16, 10, 50, kind="client", error=True, attrs={code: 422}),
            _at("3" * 16, "2" * 16, 20, 40, kind="server", attrs={code: 422}),
            _at("4" * 16, "3" * 16, 21, 30, kind="client", error=True, attrs={code: 500}),
        ]
        [a] = analyse(spans)
        below = next(e for e in a.errors if e.origin == "4" * 16)
        assert below.absorber == "3" * 16 and "its own verdict" in below.evidence[-1]
        answer = next(e for e in a.errors if e.origin == "3" * 16)
        assert answer.propagators == ["2" * 16] and answer.error_type == "HTTP 422"

    def test_5xx_and_explicit_status(self):
        spans = [
            _at("1" * 16, kind="server", attrs={"http.response.status_code": 503}),
            _at("2" * 16, kind="server", error=True, attrs={"http.response.status_code": 404}),
            _at(
                "3" * 16,
                kind="server",
                attrs={"http.response.status_code": 500, "otel.status_code": "OK"},
            ),
        ]
        [a] = analyse(spans)
        assert sorted(e.origin for e in a.errors) == ["1" * 16, "2" * 16]


class TestFireAndForgetByStructure:
    def test_an_awaited_task_named_span_is_the_origin_of_its_parents_error(self):
        """Named like a task, but it ended inside its parent, which failed with its error."""
        sig = "TimeoutError: prices timed out"
        spans = [
            _at("1" * 16, end=100, name="quote", error=True, status_message=sig),
            _at(
                "2" * 16, "1" * 16, 10, 60, name="task fetch-prices", error=True, status_message=sig
            ),
        ]
        [a] = analyse(spans)
        [err] = a.errors
        assert err.origin == "2" * 16 and err.propagators == ["1" * 16] and err.escaped

    def test_a_task_named_span_the_parent_waited_for_is_absorbed_not_unobserved(self):
        spans = [
            _at("1" * 16, end=100, name="quote"),
            _at("2" * 16, "1" * 16, 10, 60, name="thread warm-cache", error=True),
        ]
        [a] = analyse(spans)
        [err] = a.errors
        assert err.outcome == "absorbed" and err.absorber == "1" * 16
        assert "named like fire-and-forget work, but waited for" in err.evidence[-1]

    def test_work_the_parent_did_not_wait_for_is_unobserved_and_says_why(self):
        """No name needed: the parent started other work while it still ran, and did not fail."""
        spans = [
            _at("1" * 16, end=100, name="checkout"),
            _at("2" * 16, "1" * 16, 10, 60, name="audit.write", error=True),
            _at("3" * 16, "1" * 16, 12, 30, name="charge"),
        ]
        [a] = analyse(spans)
        [err] = a.errors
        assert err.outcome == "unobserved" and err.absorber is None
        assert any("started charge while" in ev and "not joined" in ev for ev in err.evidence)


def _consumer(
    sid, start, end, error=False, links=(), group="g", producer="p" * 16, name="process orders"
):
    attrs = {"messaging.consumer.group.name": group, "messaging.message.id": "m1"}
    return Span(
        "c" * 32,
        sid,
        producer,
        name,
        "svc",
        start,
        end,
        error=error,
        kind="consumer",
        attributes=attrs,
        links=[Link("c" * 32, x) for x in links],
    )


class TestAsyncRetries:
    """A consumer run that failed and ran again is absorbed by the retry, as in-process retries are."""

    def _producer(self):
        return [
            _at("a" * 16, end=5, name="checkout"),
            _at("p" * 16, "a" * 16, 1, 2, kind="producer", name="send orders"),
        ]

    def test_a_redelivered_message_absorbs_the_failed_run(self):
        spans = [
            *self._producer(),
            _consumer("1" * 16, 10, 20, error=True),
            _consumer("2" * 16, 30, 40),
        ]
        [a] = analyse(spans)
        [err] = a.errors
        assert (err.outcome, err.absorber, err.escaped) == ("absorbed", "2" * 16, False)
        assert any("ran again (redelivery; 2 runs, recovered)" in ev for ev in err.evidence)

    def test_a_celery_retry_linked_to_the_failed_run_absorbs_it(self):
        spans = [
            *self._producer(),
            _consumer("1" * 16, 10, 20, error=True),
            _consumer("2" * 16, 30, 40, error=True, links=["1" * 16]),
        ]
        [a] = analyse(spans)
        first, last = sorted(a.errors, key=lambda e: e.origin)
        assert (
            first.absorber == "2" * 16 and "a retry; 2 runs, did not recover" in first.evidence[-1]
        )
        assert last.outcome == "escaped"

    def test_another_consumer_group_reading_the_message_is_no_retry(self):
        spans = [
            *self._producer(),
            _consumer("1" * 16, 10, 20, error=True),
            _consumer("2" * 16, 30, 40, group="other"),
        ]
        [a] = analyse(spans)
        assert a.errors[0].escaped

    def test_a_dead_letter_hand_off_absorbs_the_failed_run(self):
        spans = [
            *self._producer(),
            _consumer("1" * 16, 10, 20, error=True),
            _at(
                "d" * 16,
                "1" * 16,
                15,
                16,
                kind="producer",
                name="send orders.dlq",
                attrs={"messaging.destination.name": "orders.dlq"},
            ),
            _consumer("e" * 16, 50, 60, producer="d" * 16, name="process orders.dlq"),
        ]
        [a] = analyse(spans)
        [err] = a.errors
        assert err.absorber == "e" * 16 and "dead-letter queue orders.dlq" in err.evidence[-1]

    def test_links_to_itself_or_back_and_forth_absorb_nothing_into_itself(self):
        both_ways = [
            *self._producer(),
            _consumer("1" * 16, 10, 20, error=True, links=["2" * 16, "1" * 16]),
            _consumer("2" * 16, 10, 20, error=True, links=["1" * 16]),
        ]
        [a] = analyse(both_ways)
        assert all(e.absorber != e.origin for e in a.errors)
        assert [e.outcome for e in a.errors] == ["escaped", "escaped"]

    def test_a_dead_letter_send_consumed_by_the_failed_run_itself_is_no_hand_off(self):
        """A loop (the run is the DLQ send's consumer and its parent): not absorbed by itself."""
        dlq = {"messaging.destination.name": "orders.dlq"}
        spans = [
            _consumer("1" * 16, 10, 20, error=True, producer="d" * 16),
            _at("d" * 16, "1" * 16, 12, 13, kind="producer", name="send", attrs=dlq),
        ]
        [a] = analyse(spans)
        [err] = a.errors
        assert err.absorber == "d" * 16


class TestAbsorbThenFailWithoutStack:
    """No stack to read: the timing of the parent's failure and its own error decide."""

    MS = 1_000_000

    def _spans(self, parent_message: str, failed_at_ms: int):
        ms = self.MS
        parent = _at("1" * 16, end=20 * ms, name="report", error=True)
        parent.status_message = parent_message
        kind, _, message = parent_message.partition(": ")
        attributes = {"exception.type": kind, "exception.message": message}
        parent.events = [SpanEvent("exception", attributes, failed_at_ms * ms)]
        child = _at("2" * 16, "1" * 16, 1 * ms, 5 * ms, name="SELECT rows", error=True)
        child.status_message = "TimeoutError: query timed out"
        return [parent, child]

    def test_a_failure_long_after_the_child_is_the_parents_own_error(self):
        [a] = analyse(self._spans("ReportFailed: totals do not match", failed_at_ms=19))
        child = next(e for e in a.errors if e.origin == "2" * 16)
        assert child.outcome == "absorbed" and child.absorber == "1" * 16
        assert "an error of its own" in child.evidence[-1]
        own = next(e for e in a.errors if e.origin == "1" * 16)
        assert own.escaped and own.error_type

    def test_a_failure_right_after_the_child_is_a_translation(self):
        [a] = analyse(self._spans("ReportFailed: totals do not match", failed_at_ms=5))
        [err] = a.errors
        assert err.origin == "2" * 16 and err.propagators == ["1" * 16]

    def test_an_error_that_names_the_childs_is_a_translation_whenever_it_came(self):
        [a] = analyse(self._spans("Unavailable: rows failed: TimeoutError", failed_at_ms=19))
        [err] = a.errors
        assert err.origin == "2" * 16 and any("names" in ev for ev in err.evidence)


_ids16 = st.sampled_from([f"{n:016x}" for n in range(1, 9)])


@st.composite
def _hop_traces(draw):
    """Producer/consumer traces with redeliveries, links (to anything, itself included), DLQ
    sends and 4xx/5xx answers, on one small id space so they collide."""
    spans = []
    for sid in draw(st.lists(_ids16, min_size=1, max_size=8, unique=True)):
        start = draw(st.integers(0, 100))
        attrs = {}
        if draw(st.booleans()):
            attrs["http.response.status_code"] = draw(st.sampled_from([200, 404, 422, 500]))
        if draw(st.booleans()):
            attrs["messaging.destination.name"] = draw(st.sampled_from(["orders", "orders.dlq"]))
        spans.append(
            Span(
                "c" * 32,
                sid,
                draw(st.none() | _ids16),
                draw(st.sampled_from(["process orders", "send orders.dlq", "task x", "x"])),
                "svc",
                start,
                start + draw(st.integers(0, 50)),
                error=draw(st.booleans()),
                kind=draw(st.sampled_from(["consumer", "producer", "server", "client"])),
                attributes=attrs,
                links=[Link("c" * 32, x) for x in draw(st.lists(_ids16, max_size=2))],
            )
        )
    return spans


@BUDGET
@given(_hop_traces())
def test_any_hops_give_well_formed_paths(spans):
    """Retries, redeliveries, DLQ hand-offs and HTTP answers in any shape: every path ends in a
    documented outcome, never absorbed by its own origin or by a span not in the trace."""
    with bounded():
        [a] = analyse(spans)
    for err in a.errors:
        assert err.outcome in OUTCOMES and (err.outcome == "absorbed") == (err.absorber is not None)
        assert err.absorber is None or (err.absorber in a.spans and err.absorber != err.origin)


class TestRetryGroups:
    """Same-named siblings are attempts of one operation only when they ran one at a time and
    the parent's error does not say otherwise."""

    def test_a_parallel_fan_out_is_no_retry(self, spans):
        tracer = trace.get_tracer("plain")
        with tracer.start_as_current_span("batch") as batch:
            ctx = trace.set_span_in_context(batch)
            items = [tracer.start_span("process item", context=ctx) for _ in range(5)]
            for n, item in enumerate(items):  # all five open at once, as in a thread pool
                if n in (0, 2, 3):
                    item.record_exception(ValueError(f"bad item {n}"))
                    item.set_status(trace.Status(trace.StatusCode.ERROR, f"bad item {n}"))
                item.end()
        a = _plain(spans)
        assert a.retries == []
        failed = [e for e in a.errors if a.spans[e.origin].name == "process item"]
        assert len(failed) == 3
        for err in failed:  # each failure is its own, none hidden as a recovered attempt
            assert not any("retried" in ev for ev in err.evidence), err.evidence

    def test_a_failed_call_the_handler_raised_later_is_its_error_not_a_retry(self, spans):
        tracer = trace.get_tracer("plain")
        with pytest.raises(ConnectionError), tracer.start_as_current_span("handler"):
            error = None
            for n in range(3):
                try:
                    with tracer.start_as_current_span("GET /user", kind=SpanKind.CLIENT):
                        if n == 1:
                            raise ConnectionError("user service unavailable")
                except ConnectionError as exc:
                    error = exc
            assert error is not None
            raise error
        a = _plain(spans)
        second = sorted(
            (s for s in a.spans.values() if s.name == "GET /user"), key=lambda s: s.start_ns
        )[1]
        assert a.retries == []
        [err] = a.errors  # one error, born in the second call, escaping through the handler
        assert err.origin == second.span_id and err.propagators == _ids(a, "handler")
        assert err.outcome == "escaped"

    def test_retries_that_ran_out_still_continue_from_the_last_attempt(self, spans):
        tracer = trace.get_tracer("plain")
        with pytest.raises(TimeoutError), tracer.start_as_current_span("job"):
            for n in range(3):
                try:
                    with tracer.start_as_current_span("fetch"):
                        raise TimeoutError("fetch timed out")
                except TimeoutError:
                    if n == 2:
                        raise
        a = _plain(spans)
        [group] = a.retries
        assert (len(group.attempts), group.failed, group.succeeded) == (3, 3, False)
        last = next(e for e in a.errors if e.origin == group.attempts[-1])
        assert last.propagators == _ids(a, "job") and last.outcome == "escaped"
        for sid in group.attempts[:-1]:
            err = next(e for e in a.errors if e.origin == sid)
            assert err.absorber == _ids(a, "job")[0] and "retried" in err.evidence[-1]

    def test_retry_transient_that_ran_out_is_one_group_escaping_from_its_last_attempt(self, spans):
        @retry_transient(attempts=3, sleep=lambda s: None)
        @traced("reserve")
        def reserve() -> None:
            raise TimeoutError("slow")

        with pytest.raises(TimeoutError), traced("request"):
            reserve()
        [a] = analyse(from_readable_spans(spans.get_finished_spans()))
        [group] = a.retries
        assert (len(group.attempts), group.failed, group.succeeded) == (3, 3, False)
        [escaped] = [e for e in a.errors if e.escaped]
        assert escaped.origin == group.attempts[-1]

    def test_attempt_numbers_keep_a_recovered_retry_grouped(self, spans):
        """Explicit evidence wins over the parent's failure: the attempts say they were tries."""
        tracer = trace.get_tracer("plain")
        with pytest.raises(TimeoutError), tracer.start_as_current_span("job"):
            for n in (1, 2):
                with contextlib.suppress(TimeoutError):
                    with tracer.start_as_current_span(
                        "fetch", attributes={"tracectx.retry.attempt": n}
                    ):
                        if n == 1:
                            raise TimeoutError("fetch timed out")
            raise TimeoutError("fetch timed out")
        a = _plain(spans)
        [group] = a.retries
        assert (len(group.attempts), group.failed, group.succeeded) == (2, 1, True)

    def test_a_success_ends_a_retry_run(self, spans):
        tracer = trace.get_tracer("plain")
        with tracer.start_as_current_span("sync"):
            for n in range(5):  # fail, ok (recovered), then new work: fail, fail, ok
                try:
                    with tracer.start_as_current_span("push"):
                        if n in (0, 2, 3):
                            raise TimeoutError("push timed out")
                except TimeoutError:
                    pass
        a = _plain(spans)
        assert [(len(g.attempts), g.failed, g.succeeded) for g in a.retries] == [
            (2, 1, True),
            (3, 2, True),
        ]


@st.composite
def _fan_outs(draw):
    """Same-named children of one parent at any times (parallel and sequential mixed), some
    failing, the parent failing or not."""
    messages = st.sampled_from(["ValueError: bad", "TimeoutError: slow"])
    failed = draw(st.booleans())
    spans = [
        Span(
            "d" * 32,
            "1" * 16,
            None,
            "batch",
            "svc",
            0,
            1000,
            error=failed,
            status_message=draw(messages) if failed else "",
        )
    ]
    for n in range(draw(st.integers(2, 12))):
        start = draw(st.integers(0, 900))
        failed = draw(st.booleans())
        spans.append(
            Span(
                "d" * 32,
                f"{n + 2:016x}",
                "1" * 16,
                "process item",
                "svc",
                start,
                start + draw(st.integers(0, 100)),
                error=failed,
                status_message=draw(messages) if failed else "",
            )
        )
    return spans


@BUDGET
@given(_fan_outs())
def test_overlapping_same_named_siblings_are_never_retries(spans):
    """Work that ran at the same time as another of its name is a fan-out, never an attempt;
    attempts run one after another, every one but the last failed."""
    with bounded():
        [a] = analyse(spans)
    by_id = {s.span_id: s for s in spans}

    def overlap(x, y):
        return x.start_ns < y.end_ns and y.start_ns < x.end_ns

    grouped = {sid for g in a.retries for sid in g.attempts}
    for sid in grouped:
        others = [s for s in spans[1:] if s.span_id != sid]
        assert not any(overlap(by_id[sid], o) for o in others), sid
    for g in a.retries:
        times = [(by_id[s].start_ns, by_id[s].end_ns) for s in g.attempts]
        assert all(times[i][1] <= times[i + 1][0] for i in range(len(times) - 1))
        assert all(by_id[s].error for s in g.attempts[:-1]) and g.failed >= 1
    retried = {e.origin for e in a.errors if any("retried" in ev for ev in e.evidence)}
    assert retried <= grouped
