"""Property tests for the visualiser's readers (OTLP JSON, Jaeger JSON, Jaeger API answers) and
every renderer fed what they read.

Documented behaviour under test: the readers never raise (bad parts become problems; the API
reader raises only `JaegerAPIError`), the renderers never raise on what the readers produce, the
text formats carry no control character, each example finishes well under a second and memory
stays bounded. Budgets are small enough for CI.
"""

from __future__ import annotations

import base64
import http.server
import io
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console

from tests.fuzz.bounds import BUDGET, bounded
from tests.helpers import Cost
from tests.isolated import own_process
from tracectx.safetext import has_control
from tracectx.viz import analyse, loads_spans
from tracectx.viz.model import SpanSet
from tracectx.viz.renderers import (
    annotated_jaeger_json,
    render_dot,
    render_html,
    render_mermaid,
    render_terminal,
    to_json_data,
)
from tracectx.viz.sources import parse_document
from tracectx.viz.sources.documents import parse_bytes, trace_ids_of
from tracectx.viz.sources.jaeger_api import JaegerAPIError, fetch_trace, parse_response
from tracectx.viz.sources.otlp_json import parse_otlp
from tracectx.viz.sources.otlp_typed import decode_otlp
from tracectx.viz.sources.traces import count_spans, traces

HOSTILE_CHARS = "ab\\\"'<>&`#[]{}|;\n\r\t\x00\x07\x1b\x7f\x9b\u202e\u2028 é/"
hostile_text = st.text(alphabet=HOSTILE_CHARS, max_size=30) | st.text(max_size=30)
json_leaf = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=10**30, max_value=10**400).map(str)
    | st.floats(allow_nan=False)
    | hostile_text
)
json_value = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(hostile_text, inner, max_size=4),
    max_leaves=25,
)

HEX_TRACES = ["4bf92f3577b34da6a3ce929d0e0e4736", "00000000000000000000000000000001", "0" * 32]
HEX_SPANS = ["00f067aa0ba902b7", "00f067aa0ba902b8", "00f067aa0ba902b9", "0" * 16]
trace_ids = (
    st.sampled_from([*HEX_TRACES, "trace-123", "ABC", base64.b64encode(b"\x01" * 16).decode(), ""])
    | json_value
)
span_ids = (
    st.sampled_from(
        [*HEX_SPANS, "span-A", "span-B", base64.b64encode(b"\x02" * 8).decode(), "f" * 40]
    )
    | json_value
)
times = st.integers(min_value=0, max_value=2**64) | st.sampled_from(["1" * 400, "12", -5, 1e300])


def _maybe(value: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A plausible value most of the time, anything at all otherwise."""
    return st.one_of(value, value, value, json_value)


# -- OTLP JSON ---------------------------------------------------------------------------------

meta_keys = (
    st.sampled_from(
        [
            "tracectx.error.meta.password",
            "tracectx.error.meta.creds.user",
            "tracectx.error.id",
            "tracectx.error.role",
            "tracectx.error.kind",
            "exception.message",
            "service.name",
        ]
    )
    | hostile_text
)


def _otlp_docs(
    maybe: Any,
    trace_ids: st.SearchStrategy[Any] = trace_ids,
    span_ids: st.SearchStrategy[Any] = span_ids,
    times: st.SearchStrategy[Any] = times,
    required_ids: bool = False,
) -> st.SearchStrategy[Any]:
    """OTLP JSON documents whose parts are plausible as often as `maybe` makes them."""
    any_value: st.SearchStrategy[Any] = st.deferred(
        lambda: st.one_of(
            st.fixed_dictionaries({"stringValue": maybe(hostile_text)}),
            st.fixed_dictionaries({"intValue": maybe(st.integers().map(str))}),
            st.fixed_dictionaries({"boolValue": maybe(st.booleans())}),
            st.fixed_dictionaries({"doubleValue": maybe(st.floats(allow_nan=False))}),
            st.fixed_dictionaries(
                {"stringValue": maybe(hostile_text), "intValue": maybe(st.integers().map(str))}
            ),
            st.fixed_dictionaries(
                {
                    "arrayValue": maybe(
                        st.fixed_dictionaries({"values": maybe(st.lists(any_value, max_size=3))})
                    )
                }
            ),
            st.fixed_dictionaries(
                {"kvlistValue": maybe(st.fixed_dictionaries({"values": maybe(otlp_attrs)}))}
            ),
            json_value,
        )
    )
    otlp_attrs = st.lists(
        maybe(st.fixed_dictionaries({"key": maybe(meta_keys), "value": any_value})), max_size=4
    )
    ids = {"traceId": trace_ids, "spanId": span_ids}
    otlp_span = st.fixed_dictionaries(
        ids if required_ids else {},
        optional={
            **({} if required_ids else ids),
            "parentSpanId": span_ids,
            "name": maybe(hostile_text),
            "kind": maybe(
                st.sampled_from([1, 2, 3, 4, 5, "SPAN_KIND_CONSUMER", "SPAN_KIND_PRODUCER"])
            ),
            "startTimeUnixNano": times,
            "endTimeUnixNano": times,
            "status": maybe(
                st.fixed_dictionaries(
                    {"code": st.sampled_from([0, 2, "STATUS_CODE_ERROR"]), "message": hostile_text}
                )
            ),
            "attributes": maybe(otlp_attrs),
            "events": maybe(
                st.lists(
                    maybe(
                        st.fixed_dictionaries(
                            {"name": maybe(hostile_text), "attributes": maybe(otlp_attrs)},
                            optional={"timeUnixNano": times},
                        )
                    ),
                    max_size=2,
                )
            ),
            "links": maybe(
                st.lists(
                    maybe(st.fixed_dictionaries({"traceId": trace_ids, "spanId": span_ids})),
                    max_size=2,
                )
            ),
        },
    )
    otlp_doc = st.fixed_dictionaries(
        {
            "resourceSpans": maybe(
                st.lists(
                    maybe(
                        st.fixed_dictionaries(
                            {
                                "resource": maybe(
                                    st.fixed_dictionaries({"attributes": maybe(otlp_attrs)})
                                ),
                                "scopeSpans": maybe(
                                    st.lists(
                                        maybe(
                                            st.fixed_dictionaries(
                                                {
                                                    "spans": maybe(
                                                        st.lists(maybe(otlp_span), max_size=6)
                                                    )
                                                }
                                            )
                                        ),
                                        max_size=2,
                                    )
                                ),
                            }
                        )
                    ),
                    max_size=2,
                )
            )
        }
    )
    return otlp_doc


def _mostly(value: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A plausible value nearly always: whole documents then often reach the typed reader."""
    return st.integers(0, 40).flatmap(lambda i: json_value if i == 40 else value)


otlp_doc = _otlp_docs(_maybe)
clean_otlp_doc = _otlp_docs(
    _mostly,
    _mostly(st.sampled_from([*HEX_TRACES[:2], "trace-123", "ABC", "4BF92F3577B34DA6"])),
    _mostly(st.sampled_from([*HEX_SPANS[:3], "span-A", "F" * 16])),
    _mostly(st.integers(min_value=0, max_value=2**63).map(str) | st.integers(0, 2**63)),
    required_ids=True,
)

# -- Jaeger JSON -------------------------------------------------------------------------------

jaeger_tags = st.lists(
    _maybe(
        st.fixed_dictionaries(
            {
                "key": _maybe(
                    meta_keys | st.sampled_from(["error", "span.kind", "otel.status_code"])
                ),
                "value": json_value,
            }
        )
    ),
    max_size=4,
)
jaeger_span = st.fixed_dictionaries(
    {},
    optional={
        "traceID": trace_ids,
        "spanID": span_ids,
        "parentSpanID": span_ids,
        "operationName": _maybe(hostile_text),
        "references": _maybe(
            st.lists(
                _maybe(
                    st.fixed_dictionaries(
                        {
                            "refType": _maybe(st.sampled_from(["CHILD_OF", "FOLLOWS_FROM"])),
                            "traceID": trace_ids,
                            "spanID": span_ids,
                        }
                    )
                ),
                max_size=2,
            )
        ),
        "startTime": times,
        "duration": times,
        "tags": _maybe(jaeger_tags),
        "logs": _maybe(
            st.lists(_maybe(st.fixed_dictionaries({"fields": _maybe(jaeger_tags)})), max_size=2)
        ),
        "processID": _maybe(st.sampled_from(["p1", "p2"])),
        "process": _maybe(st.fixed_dictionaries({"serviceName": _maybe(hostile_text)})),
    },
)
jaeger_trace = st.fixed_dictionaries(
    {"spans": _maybe(st.lists(_maybe(jaeger_span), max_size=6))},
    optional={
        "processes": _maybe(
            st.dictionaries(
                st.sampled_from(["p1", "p2"]),
                _maybe(st.fixed_dictionaries({"serviceName": _maybe(hostile_text)})),
                max_size=2,
            )
        )
    },
)
jaeger_doc = st.one_of(
    st.fixed_dictionaries({"data": _maybe(st.lists(_maybe(jaeger_trace), max_size=2))}),
    jaeger_trace,
    st.lists(_maybe(jaeger_span), max_size=6),  # jaeger-ui's bare span arrays
    st.fixed_dictionaries({"data": st.none(), "errors": _maybe(st.lists(json_value, max_size=2))}),
)

# -- checks ------------------------------------------------------------------------------------


def _no_controls(text: str) -> None:
    assert not any(has_control(line) for line in text.splitlines()), text[:500]


def _render_everything(span_set: SpanSet) -> None:
    """Every renderer on what was read: nothing raises, text formats carry no control char."""
    analyses = analyse(span_set)
    plain = io.StringIO()
    render_terminal(analyses, Console(file=plain, width=120), full=True)
    _no_controls(plain.getvalue())
    render_terminal(analyses, Console(file=io.StringIO(), force_terminal=True, width=120))
    _no_controls(render_mermaid(analyses))
    _no_controls(render_dot(analyses))
    html = render_html(analyses, jaeger_url="http://j", full=True)
    assert "<script>" not in html.split('id="data">')[1].split("</script>")[0]
    _no_controls(json.dumps(to_json_data(analyses, "http://j"), default=str))
    _no_controls(json.dumps(annotated_jaeger_json(analyses), default=str))
    for problem in span_set.problems:
        assert isinstance(problem, str)


@BUDGET
@given(otlp_doc)
def test_otlp_reader_and_renderers(doc):
    text = json.dumps(doc)
    with bounded(peak_bytes=64 * 1024 * 1024):
        _render_everything(loads_spans(text))


@BUDGET
@given(clean_otlp_doc | otlp_doc)
def test_typed_otlp_reader_agrees_with_the_tolerant_reader(doc):
    """Where the msgspec reader takes a document, it reads exactly what the tolerant reader
    reads (same spans) and the tolerant reader finds no problem in it; the counting pass
    counts exactly the spans the reading pass keeps."""
    import msgspec

    raw = json.dumps(doc).encode()
    with bounded(peak_bytes=64 * 1024 * 1024):
        typed = decode_otlp(raw)
        if typed is not None:
            tolerant = parse_otlp(msgspec.json.decode(raw))  # the same parser's plain values
            assert typed.spans == tolerant.spans
            assert tolerant.problems == []
        read = parse_bytes(raw)
        ids = trace_ids_of(raw)
        if isinstance(read, ValueError):
            assert isinstance(ids, ValueError)
        else:
            assert ids == [s.trace_id for s in read.spans]


@BUDGET
@given(st.lists(clean_otlp_doc | otlp_doc | jaeger_doc | st.just("{broken"), max_size=5))
def test_traces_one_at_a_time_are_the_whole_files_traces(tmp_path_factory, docs):
    """Reading a JSON-lines file trace by trace (count, then read) gives every span once,
    grouped by trace, in the order `analyse` gives for the whole file; same problems."""
    path = tmp_path_factory.mktemp("lines") / "spans.jsonl"
    path.write_text("\n".join(d if isinstance(d, str) else json.dumps(d) for d in docs))
    with bounded(peak_bytes=64 * 1024 * 1024):
        whole = loads_spans(path.read_bytes())
        problems: list[str] = []
        streamed = list(traces([path], count_spans([path]), problems))
    by_trace: dict[str, list[Any]] = {}
    for span in whole.spans:
        by_trace.setdefault(span.trace_id, []).append(span)
    assert streamed == list(by_trace.values())
    assert problems == [f"{path}: {p}" for p in whole.problems]


@BUDGET
@given(jaeger_doc)
def test_jaeger_reader_and_renderers(doc):
    text = json.dumps(doc)
    with bounded(peak_bytes=64 * 1024 * 1024):
        _render_everything(loads_spans(text))


@BUDGET
@given(st.binary(max_size=300) | json_value.map(lambda v: json.dumps(v).encode()))
def test_any_bytes_are_read_without_raising(data):
    with bounded(peak_bytes=64 * 1024 * 1024):
        _render_everything(loads_spans(data))


@BUDGET
@given(
    st.binary(max_size=300)
    | (jaeger_doc | otlp_doc.map(lambda d: {"result": d})).map(lambda d: json.dumps(d).encode())
)
def test_jaeger_api_answer_parser_raises_only_its_error(body):
    with bounded(peak_bytes=64 * 1024 * 1024):
        try:
            doc = parse_response("/api/traces/x", body)
        except JaegerAPIError:
            return
        _render_everything(parse_document(doc))


class _Answer(http.server.BaseHTTPRequestHandler):
    body = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def jaeger_url() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


@settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=st.binary(max_size=200) | jaeger_doc.map(lambda d: json.dumps(d).encode()))
def test_fetch_trace_over_http_raises_only_its_error(jaeger_url, body):
    _Answer.body = body
    cost = Cost()
    try:
        span_set = fetch_trace(jaeger_url, "4bf92f3577b34da6a3ce929d0e0e4736", timeout=5)
    except JaegerAPIError:
        span_set = None
    # a second of CPU; by the wall clock (a loaded machine, the server's thread) under the
    # 5 s timeout: no answer is waited out
    cost.assert_within(1.0, wall_s=4.0)
    if span_set is not None:
        _render_everything(span_set)


# -- compressed and protobuf input: one rule for every reader, memory bounded by RLIMIT_AS -------


def _gzip_variants(data: bytes, cut: int, flip: int) -> list[bytes]:
    """`data` gzipped: whole, cut short, one byte flipped, with a zero-bytes bomb after it."""
    import gzip

    whole = gzip.compress(data)
    at = cut % len(whole)
    flipped = bytearray(whole)
    flipped[flip % len(whole)] ^= 0xFF
    return [whole, whole[:at], bytes(flipped), whole + gzip.compress(bytes(8 << 20))]


@own_process
@settings(BUDGET, max_examples=50)
@given(
    st.lists(otlp_doc | jaeger_doc, min_size=1, max_size=3).map(
        lambda docs: b"".join(json.dumps(d).encode() + b"\n" for d in docs)
    )
    | st.binary(max_size=300),
    st.integers(0, 10**6),
    st.integers(0, 10**6),
)
def test_gzip_input_is_read_alike_from_a_file_and_from_bytes(tmp_path_factory, data, cut, flip):
    """Whatever the gzip stream (broken, cut, a bomb after good data), `load_spans(path)` and
    `loads_spans(bytes)` keep the same spans, within a real address-space limit."""
    from tests.memory_limit import MiB, address_space_limit
    from tracectx.viz.sources import load_spans

    path = tmp_path_factory.mktemp("gz") / "input.gz"
    for value in _gzip_variants(data, cut, flip):
        path.write_bytes(value)
        # the bomb: up to 200x 64 KiB inflated (the ratio's floor), held, then parsed
        with address_space_limit(512 * MiB), bounded(2.0, peak_bytes=96 * MiB):
            from_file, from_bytes = load_spans(path), loads_spans(value)
        assert from_file.spans == from_bytes.spans


@own_process
@settings(BUDGET, max_examples=100)
@given(otlp_doc, st.integers(0, 10**6), st.binary(min_size=1, max_size=6))
def test_protobuf_input_of_any_damage_is_read_within_bounds(doc, cut, noise):
    """OTLP JSON turned into protobuf, then cut and overwritten anywhere: spans or problems,
    never an exception, within a real address-space limit."""
    from google.protobuf.json_format import ParseDict, ParseError
    from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

    from tests.memory_limit import MiB, address_space_limit

    try:
        data = ParseDict(doc, TracesData()).SerializeToString()
    except (ParseError, ValueError, TypeError, RecursionError):
        return  # not valid as protobuf JSON: the JSON readers' case
    if not data:
        return
    at = cut % len(data)
    for value in (data, data[:at], data[:at] + noise + data[at + len(noise) :]):
        with address_space_limit(512 * MiB), bounded(1.0, peak_bytes=64 * MiB):
            out = loads_spans(value)
        _render_everything(out)
