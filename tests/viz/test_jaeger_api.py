"""Searching Jaeger as it really answers, per generation (v2.0, v2.2-v2.18, v2.19-v2.20, main,
a server with only the v1 API).

The server is `tests.viz.jaeger_gateway.JaegerStandIn`: a local stdlib HTTP server that answers
exactly as Jaeger's api_v3 HTTP gateway and v1 JSON API do in each generation (status codes,
parameter names and aliases, error bodies, written from the Go source; see its docstring).
"""

from __future__ import annotations

import datetime as dt
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.viz.jaeger_gateway import GENERATIONS, JaegerStandIn, StoredSpan
from tracectx.cli import main
from tracectx.viz import analyse
from tracectx.viz.sources import jaeger_api
from tracectx.viz.sources.jaeger_api import (
    JaegerAPIError,
    TraceSearch,
    fetch_service,
    fetch_trace,
    parse_lookback,
    parse_tag,
)


def _trace(
    now: dt.datetime, n: int, minutes_ago: float, *, service="checkout", error=False, op="GET /cart"
):
    """A two-span trace of `service`: a server span and a child that fails when `error`."""
    start = now - dt.timedelta(minutes=minutes_ago)
    tid = f"{n:032x}"
    root = StoredSpan(tid, f"{n:08x}00000001", None, op, service, start)
    child = StoredSpan(
        tid,
        f"{n:08x}00000002",
        root.span_id,
        "charge",
        service,
        start + dt.timedelta(milliseconds=1),
        error=error,
        attributes={"tracectx.error.role": "origin"} if error else {},
    )
    return [root, child]


def store(now: dt.datetime | None = None) -> list[StoredSpan]:
    """The stored traces, timed back from `now` (when the test runs: a store made at import
    aged with the suite, and a search "of the last hour" lost trace 5 once the suite ran long)."""
    now = now or dt.datetime.now(dt.UTC)
    return [
        *_trace(now, 1, 5, error=True),  # newest, failed
        *_trace(now, 2, 10),
        *_trace(now, 3, 20, error=True, op="POST /pay"),
        *_trace(now, 4, 40),
        *_trace(now, 5, 50, error=True),
        *_trace(now, 6, 180, error=True),  # three hours ago
        *_trace(now, 7, 2, service="search"),
    ]


@pytest.fixture(params=GENERATIONS)
def jaeger(request):
    now = dt.datetime.now(dt.UTC)
    server = JaegerStandIn(request.param, store(now))
    server.stored_at = now  # the `now` the traces' ages count from
    yield server
    server.close()


def _traces(span_set) -> list[int]:
    return sorted(int(a.trace_id, 16) for a in analyse(span_set))


class TestSearch:
    def test_empty_search_is_an_empty_result(self, jaeger, capsys):
        """v2.2+ answer 404 "No traces found" for an empty search: not a missing API."""
        found = fetch_service(jaeger.url, TraceSearch("nobody"))
        assert not found.spans and not found.problems
        code = main(["graph", "--jaeger", jaeger.url, "--service", "nobody", "--format", "json"])
        err = capsys.readouterr().err
        assert code == 0, err
        assert "no traces found" in err and "no trace search API" not in err
        if jaeger.generation != "v1only":  # the v3 answer was taken, no needless v1 fallback
            assert [p for p, _ in jaeger.requests] == ["/api/v3/traces"] * 2

    def test_every_generation_understands_service_window_and_limit(self, jaeger):
        search = TraceSearch("checkout", lookback=dt.timedelta(minutes=45), limit=2)
        found = fetch_service(jaeger.url, search, now=jaeger.stored_at)
        assert _traces(found) == [1, 2]  # the two newest of 1-4 (5 and 6 too old)
        [understood] = jaeger.understood
        assert understood["service"] == "checkout" and understood["depth"] == 2
        window = understood["start_max"] - understood["start_min"]
        assert window == dt.timedelta(minutes=45)

    def test_default_search_is_the_last_hour_newest_twenty(self, jaeger):
        assert _traces(fetch_service(jaeger.url, "checkout")) == [1, 2, 3, 4, 5]
        [understood] = jaeger.understood
        assert understood["depth"] == 20
        assert understood["start_max"] - understood["start_min"] == dt.timedelta(hours=1)

    def test_lookback_reaches_older_traces(self, jaeger):
        search = TraceSearch("checkout", lookback=parse_lookback("1d"))
        assert _traces(fetch_service(jaeger.url, search)) == [1, 2, 3, 4, 5, 6]

    def test_operation(self, jaeger):
        search = TraceSearch("checkout", operation="POST /pay")
        assert _traces(fetch_service(jaeger.url, search)) == [3]

    @pytest.mark.parametrize(
        "attributes", [{"error": "true"}, {"tracectx.error.role": "origin"}], ids=["error", "role"]
    )
    def test_errors_only_on_every_generation(self, jaeger, attributes):
        """v2.19+ filter on the server; older ones ignore query.attributes, so we filter and
        say so."""
        search = TraceSearch("checkout", attributes=attributes)
        found = fetch_service(jaeger.url, search)
        assert _traces(found) == [1, 3, 5]
        assert all(a.errors for a in analyse(found))
        server_filters = jaeger.generation in ("v2.19", "main", "v1only")
        assert bool(found.problems) is not server_filters
        if found.problems:
            assert "needs Jaeger v2.19+" in found.problems[0]

    def test_limit_applies_after_our_own_filter(self, jaeger):
        search = TraceSearch("checkout", limit=2, attributes={"error": "true"})
        found = fetch_service(jaeger.url, search)
        expected = {"v2.19": [1, 3], "main": [1, 3], "v1only": [1, 3]}
        # An older server gave its two newest traces (1, 2) unfiltered: only 1 failed.
        assert _traces(found) == expected.get(jaeger.generation, [1])

    def test_cli_search_options(self, jaeger, capsys):
        args = ["graph", "--jaeger", jaeger.url, "--service", "checkout", "--format", "json"]
        args += ["--lookback", "30m", "--limit", "5", "--errors-only"]
        assert main(args) == 0
        import json

        data = json.loads(capsys.readouterr().out)
        assert sorted(int(t["trace_id"], 16) for t in data["traces"]) == [1, 3]
        [understood] = jaeger.understood
        assert understood["depth"] == 5
        assert understood["start_max"] - understood["start_min"] == dt.timedelta(minutes=30)

    def test_cli_tag_and_operation(self, jaeger, capsys):
        args = ["graph", "--jaeger", jaeger.url, "--service", "checkout", "--format", "json"]
        args += ["--tag", "tracectx.error.role=origin", "--operation", "charge"]
        assert main(args) == 0
        import json

        data = json.loads(capsys.readouterr().out)
        assert sorted(int(t["trace_id"], 16) for t in data["traces"]) == [1, 3, 5]


class TestAnswers:
    def test_no_search_api_at_all(self):
        server = JaegerStandIn("main", store())
        server.generation = "v1only"  # no api_v3 ...
        try:
            server.handle = _plain_404(server)  # ... and no v1 search either
            with pytest.raises(JaegerAPIError, match="no trace search API"):
                fetch_service(server.url, "checkout")
        finally:
            server.close()

    def test_main_has_no_v1_search_but_v3_answers(self):
        server = JaegerStandIn("main", store())
        try:
            assert _traces(fetch_service(server.url, "search")) == [7]
            assert [p for p, _ in server.requests] == ["/api/v3/traces"]
        finally:
            server.close()

    def test_gateway_error_is_reported_with_its_message(self, capsys):
        server = JaegerStandIn("v2.19", store())
        server.storage_error = "elasticsearch: connection refused"
        try:
            assert main(["graph", "--jaeger", server.url, "--service", "checkout"]) == 1
            err = capsys.readouterr().err
            assert "answered 500: elasticsearch: connection refused" in err
        finally:
            server.close()

    def test_trace_not_found_in_v3_does_not_fall_back(self, jaeger):
        with pytest.raises(JaegerAPIError, match="not found"):
            fetch_trace(jaeger.url, "f" * 32)
        paths = [p for p, _ in jaeger.requests]
        if jaeger.generation in ("v2.5", "v2.19", "main"):
            assert paths == ["/api/v3/traces/" + "f" * 32]

    def test_trace_by_id(self, jaeger):
        assert _traces(fetch_trace(jaeger.url, f"{3:032x}")) == [3]


class TestEncodings:
    """A server must not pick an encoding whose chunks inflate unbounded (zstd, brotli)."""

    def _answer(self, encoding: str) -> tuple[Exception | None, list[str]]:
        import http.server
        import threading

        asked: list[str] = []

        class Encoded(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                asked.append(self.headers.get("Accept-Encoding", ""))
                body = b'{"result": {"resourceSpans": []}}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Encoding", encoding)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        server = http.server.HTTPServer(("127.0.0.1", 0), Encoded)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            fetch_trace(f"http://127.0.0.1:{server.server_address[1]}", "f" * 32)
        except JaegerAPIError as exc:
            return exc, asked
        finally:
            server.shutdown()
            server.server_close()
        return None, asked

    @pytest.mark.parametrize("encoding", ["zstd", "br", "gzip, gzip", "compress"])
    def test_an_encoding_not_asked_for_is_refused(self, encoding):
        error, asked = self._answer(encoding)
        assert asked == ["gzip, deflate"]
        assert error is not None and "Content-Encoding" in str(error)

    def test_identity_is_read(self):
        error, _ = self._answer("identity")
        assert error is None or "Content-Encoding" not in str(error)


def _plain_404(server):
    def handle(handler):
        server._http_error(handler, 404, "404 page not found")

    return handle


class TestOptions:
    @pytest.mark.parametrize(
        "args",
        [
            ["--lookback", "1 hour"],
            ["--lookback", "0h"],
            ["--limit", "0"],
            ["--limit", "many"],
            ["--tag", "novalue"],
        ],
    )
    def test_bad_values_are_usage_errors(self, args, capsys):
        with pytest.raises(SystemExit) as exit_:
            main(["graph", "--jaeger", "http://127.0.0.1:9", "--service", "s", *args])
        assert exit_.value.code == 2

    def test_search_options_need_a_search(self, capsys):
        assert main(["graph", "spans.json", "--errors-only"]) == 2
        assert "--errors-only refine a Jaeger search" in capsys.readouterr().err
        assert main(["graph", "--service", "checkout"]) == 2

    @pytest.mark.parametrize(
        ("text", "seconds"),
        [("30m", 1800), ("1h", 3600), ("2d", 172800), ("1w", 604800), ("90s", 90), ("1.5h", 5400)],
    )
    def test_lookback_units(self, text, seconds):
        assert parse_lookback(text).total_seconds() == seconds

    def test_tag_splits_at_the_first_equals(self):
        assert parse_tag("http.url=/a?b=c") == ("http.url", "/a?b=c")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_lookback_reads_any_text_without_crashing(text):
    try:
        assert parse_lookback(text).total_seconds() > 0
    except ValueError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 3000), st.sampled_from(["s", "m", "h", "d"]))
def test_lookback_number_and_unit(number, unit):
    scale = {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit]
    assert parse_lookback(f"{number}{unit}").total_seconds() == number * scale


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=200),
        st.text(string.printable, max_size=200).map(str.encode),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=20),
            lambda inner: (
                st.lists(inner, max_size=4)
                | st.dictionaries(
                    st.sampled_from(["error", "errors", "code", "message", "msg"]),
                    inner,
                    max_size=4,
                )
            ),
            max_leaves=20,
        ).map(lambda doc: __import__("json").dumps(doc).encode()),
    )
)
def test_error_body_of_any_shape_is_read_without_crashing(body):
    """Any 404 body is classified (JSON error report or not) and never raises."""
    report = jaeger_api._error_report(body)
    assert report is None or isinstance(report, str)
