"""Hostile span input costs bounded memory and work, and every reader keeps what it read.

Gzip bombs are read under a real address-space limit (``RLIMIT_AS`` in a child process), not a
measurement: before the limits, a 1 MB file of 1 GiB of zeros took `loads_spans` to +3 GB and
``tracectx graph bomb.gz --format json`` to 11 GB.
"""

from __future__ import annotations

import gzip
import json
import zlib
from pathlib import Path

import pytest

from tests.memory_limit import MiB, run_limited
from tracectx.viz.sources import FILE_LIMITS, load_spans, loads_spans
from tracectx.viz.sources.fields import TOO_DEEP
from tracectx.viz.sources.limits import Limits
from tracectx.viz.sources.otlp_proto import parse_otlp_proto


def _zeros_bomb(inflated: int) -> bytes:
    """Gzip of `inflated` zero bytes (concatenated members of 16 MiB: made in a second)."""
    member = gzip.compress(bytes(16 * MiB), 9)
    return member * (inflated // (16 * MiB))


def _line(i: int) -> bytes:
    span = {"traceId": f"{i + 1:032x}", "spanId": f"{i + 1:016x}", "name": f"op{i}"}
    doc = {"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}
    return json.dumps(doc).encode() + b"\n"


@pytest.fixture(scope="module")
def bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bomb") / "bomb.gz"
    path.write_bytes(gzip.compress(_line(0)) + _zeros_bomb(1 << 30))
    return path


SETUP = """
import sys
from pathlib import Path
from tracectx.viz.sources import load_spans, loads_spans
from tracectx.cli import main
path = Path(sys.argv[-1]) if len(sys.argv) > 1 else None
"""


@pytest.mark.parametrize(
    "code",
    [
        "out = loads_spans(Path({path!r}).read_bytes())",
        "out = load_spans({path!r})",
        "main(['graph', {path!r}, '--format', 'json', '--output', {out!r}])",
    ],
    ids=["loads_spans", "load_spans", "graph-json"],
)
def test_a_gzip_bomb_is_read_in_bounded_memory(bomb: Path, tmp_path: Path, code: str) -> None:
    """1 GiB of zeros after one good line: the line is kept, the bomb is a problem, and the
    reader never holds more than a few hundred MB (old code: MemoryError under this limit)."""
    run = code.format(path=str(bomb), out=str(tmp_path / "out.json"))
    check = (
        "print(len(out.spans), any('inflates to more than' in p for p in out.problems))"
        if "main(" not in run
        else ""
    )
    result = run_limited(SETUP, f"{run}\n{check}", extra_bytes=400 * MiB)
    assert result.returncode == 0, result.stderr[-2000:]
    if check:
        assert result.stdout.split() == ["1", "True"]
    else:
        assert "inflates to more than" in result.stderr + (tmp_path / "out.json").read_text()


def test_the_ratio_stops_a_bomb_early_and_small_inputs_are_never_refused_by_it() -> None:
    limits = Limits(max_inflated=1 << 40, max_ratio=10, max_document=1 << 40, ratio_floor=1000)
    out = loads_spans(gzip.compress(_line(0) + bytes(5_000_000)), limits=limits)
    assert len(out.spans) == 1
    assert any("10 times its" in p for p in out.problems)
    small = b"".join(_line(0) for _ in range(20))  # compresses ~300x, inflates to <10k
    assert len(loads_spans(gzip.compress(small), limits=limits).spans) == 20


def test_a_line_longer_than_the_document_limit_ends_the_file(tmp_path: Path) -> None:
    path = tmp_path / "long.json"
    path.write_bytes(_line(0) + b"[" * 3000 + b"\n" + _line(1))
    limits = Limits(max_inflated=1 << 30, max_ratio=1000, max_document=1000)
    out = load_spans(path, limits=limits)
    assert [s.name for s in out.spans] == ["op0"]
    assert any("a line longer than 1000 bytes" in p for p in out.problems)


def test_file_limits_can_be_raised_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from tracectx.viz.sources.limits import file_limits

    monkeypatch.setenv("TRACECTX_VIZ_MAX_RATIO", "5000")
    monkeypatch.setenv("TRACECTX_VIZ_MAX_DOCUMENT", "not a number")
    assert file_limits().max_ratio == 5000
    assert file_limits().max_document == FILE_LIMITS.max_document


# -- a broken gzip stream: every reader keeps what it read, with a problem ---------------------


def _broken_streams() -> dict[str, bytes]:
    good = gzip.compress(b"".join(_line(i) for i in range(50)))
    crc = bytearray(good)
    crc[-8] ^= 0xFF  # the CRC-32 of the trailer
    return {"bad crc": bytes(crc), "cut short": good[: len(good) * 3 // 4]}


@pytest.mark.parametrize("kind", ["bad crc", "cut short"])
def test_a_broken_gzip_stream_is_read_the_same_way_by_every_reader(
    kind: str, tmp_path: Path
) -> None:
    """Old code: `load_spans(path)` kept the spans before the break, `loads_spans(bytes)` none."""
    from tracectx_stream.decode import decode_record

    data = _broken_streams()[kind]
    path = tmp_path / "broken.json.gz"
    path.write_bytes(data)
    from_file, from_bytes, from_record = load_spans(path), loads_spans(data), decode_record(data)
    names = [s.name for s in from_file.spans]
    assert names and names == [s.name for s in from_bytes.spans]
    assert names == [s.name for s in from_record.spans]
    assert names == [f"op{i}" for i in range(len(names))]
    if kind == "bad crc":
        assert len(names) == 50
    for out in (from_file, from_bytes, from_record):
        assert any("broken gzip input" in p for p in out.problems), out.problems
        assert not any("not JSON" in p for p in out.problems), out.problems


def test_data_after_a_gzip_stream_is_a_problem_and_the_stream_is_kept() -> None:
    data = gzip.compress(_line(0)) + b"\0\0" + gzip.compress(_line(1)) + b"trailing"
    out = loads_spans(data)
    assert [s.name for s in out.spans] == ["op0", "op1"]
    assert any("not gzip" in p for p in out.problems)


def test_inflation_stops_within_one_step_of_the_limit_and_keeps_what_is_within() -> None:
    import io

    from tracectx.viz.sources.inflate import GzipStream

    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    data = compressor.compress(bytes(50 * MiB)) + compressor.flush()
    limits = Limits(max_inflated=3 * MiB, max_ratio=10**6, max_document=1 << 40)
    stream = GzipStream(io.BytesIO(data).read, limits)
    assert sum(map(len, stream)) == 3 * MiB
    assert stream.over_limit and stream.inflated <= 4 * MiB


# -- protobuf: one value too deep for upb no longer loses the batch ----------------------------


def _ld(field: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field."""
    length, size = b"", len(payload)
    while size > 0x7F:
        length += bytes([size & 0x7F | 0x80])
        size >>= 7
    return bytes([field << 3 | 2]) + length + bytes([size]) + payload


def _deep_array(depth: int) -> bytes:
    """An ``AnyValue`` holding arrays `depth` deep around the string "x" (encoded by hand:
    the protobuf library itself refuses to build it past its limit)."""
    value = _ld(1, b"x")
    for _ in range(depth):
        value = _ld(5, _ld(1, value))  # array_value { values: value }
    return value


def _deep_kvlist(depth: int) -> bytes:
    value = _ld(1, b"x")
    for _ in range(depth):
        value = _ld(6, _ld(1, _ld(1, b"k") + _ld(2, value)))  # kvlist_value { values: {k: v} }
    return value


def _batch_with(value: bytes, key: bytes = b"deep") -> bytes:
    """Two resources, three spans; the middle span carries `value` as attribute `key`."""

    def span(n: int, extra: bytes = b"") -> bytes:
        plain = _ld(9, _ld(1, b"plain") + _ld(2, _ld(1, b"ok")))
        return (
            _ld(1, bytes([n]) * 16) + _ld(2, bytes([n]) * 8) + _ld(5, b"op%d" % n) + plain + extra
        )

    def resource(service: bytes, spans: list[bytes]) -> bytes:
        attrs = _ld(1, _ld(1, b"service.name") + _ld(2, _ld(1, service)))
        return _ld(1, _ld(1, attrs) + _ld(2, b"".join(_ld(2, s) for s in spans)))

    deep = _ld(9, _ld(1, key) + _ld(2, value))
    return resource(b"a", [span(1), span(2, deep)]) + resource(b"b", [span(3)])


def _json_value(depth: int, kvlist: bool = False) -> dict[str, object]:
    value: dict[str, object] = {"stringValue": "x"}
    for _ in range(depth):
        if kvlist:
            value = {"kvlistValue": {"values": [{"key": "k", "value": value}]}}
        else:
            value = {"arrayValue": {"values": [value]}}
    return value


@pytest.mark.parametrize(
    ("value", "as_json"),
    [
        (_deep_array(48), _json_value(48)),
        (_deep_kvlist(32), _json_value(32, kvlist=True)),
        (_deep_array(300), None),
    ],
    ids=["array48", "kvlist32", "array300"],
)
def test_a_value_too_deep_for_upb_keeps_every_span(value: bytes, as_json: object) -> None:
    """Old code: the whole batch was one 'not OTLP protobuf' problem, no span kept."""
    from google.protobuf.message import DecodeError
    from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

    with pytest.raises(DecodeError):  # upb refuses the batch
        TracesData.FromString(_batch_with(value))
    out = parse_otlp_proto(_batch_with(value))
    assert [(s.name, s.service) for s in out.spans] == [("op1", "a"), ("op2", "a"), ("op3", "b")]
    assert all(s.attributes["plain"] == "ok" for s in out.spans)
    deep = out.spans[1].attributes["deep"]
    if as_json is None:
        assert deep == TOO_DEEP
        assert any("nested too deep for the protobuf parser" in p for p in out.problems)
    else:  # cut as the JSON reader cuts the same value
        span = {"traceId": "02" * 16, "spanId": "02" * 8, "name": "op2"}
        span["attributes"] = [{"key": "deep", "value": as_json}]
        doc = {"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}
        [from_json] = loads_spans(json.dumps(doc)).spans
        assert deep == from_json.attributes["deep"]
        assert TOO_DEEP in json.dumps(deep)


def test_a_broken_value_in_a_protobuf_batch_is_skipped_and_the_other_spans_kept() -> None:
    out = parse_otlp_proto(_batch_with(b"\x0a\xff\xff\xff"))  # AnyValue cut short
    assert [s.name for s in out.spans] == ["op1", "op2", "op3"]
    assert out.spans[1].attributes.get("deep") is None
    assert any("not valid protobuf, skipped" in p for p in out.problems)


# -- event times: every reader fills SpanEvent.time_ns -----------------------------------------


def test_every_reader_fills_event_times() -> None:
    from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

    from tracectx_stream.decode import decode_trace_batch, encode_trace_batch

    event = {"name": "exception", "timeUnixNano": "1700000000000000123", "attributes": []}
    span = {"traceId": "01" * 16, "spanId": "02" * 8, "name": "op", "events": [event]}
    doc = {"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}
    typed = loads_spans(json.dumps(doc))
    span["kind"] = ["not", "a", "kind"]  # the tolerant reader (the typed one gives up)
    tolerant = loads_spans(json.dumps(doc))
    message = TracesData()
    raw = message.resource_spans.add().scope_spans.add().spans.add()
    raw.trace_id, raw.span_id, raw.name = b"\x01" * 16, b"\x02" * 8, "op"
    raw.events.add(name="exception", time_unix_nano=1700000000000000123)
    proto = loads_spans(message.SerializeToString())
    jaeger_span = {
        "traceID": "01" * 16,
        "spanID": "02" * 8,
        "operationName": "op",
        "logs": [{"timestamp": 1700000000000000, "fields": [{"key": "event", "value": "x"}]}],
    }
    jaeger = loads_spans(json.dumps({"data": [{"spans": [jaeger_span]}]}))
    rekeyed = decode_trace_batch(encode_trace_batch(proto.spans))
    for out, when in [
        (typed, 1700000000000000123),
        (tolerant, 1700000000000000123),
        (proto, 1700000000000000123),
        (jaeger, 1700000000000000000),
        (rekeyed, 1700000000000000123),
    ]:
        [read] = out.spans
        assert [e.time_ns for e in read.events] == [when], out


def test_a_document_with_millions_of_bad_parts_holds_a_bounded_problem_list() -> None:
    """Old code: one message per bad part, ~400 bytes each for an unrecognised object: 2M empty
    objects in a 6 MB document held ~800 MB of messages."""
    import tracemalloc

    from tracectx.viz.sources.otlp_json import parse_otlp

    span = {"traceId": "01" * 16, "spanId": "02" * 8, "name": "x", "attributes": [1] * 500_000}
    doc = {"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}
    tracemalloc.start()
    try:
        out = parse_otlp(doc)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(out.spans) == 1
    assert len(out.problems) == 1001
    assert out.problems[-1] == "499000 more problems in this document not listed"
    assert peak < 8 * MiB


def test_a_jaeger_answer_that_inflates_past_the_limit_is_an_error_in_bounded_memory() -> None:
    """A server answering ``Content-Encoding: gzip`` with 1 GiB of zeros in one member (1 MB
    sent; httpx reads only the first member): old code held the whole inflated answer."""
    import http.server
    import threading

    from tests.memory_limit import address_space_limit
    from tracectx.viz.sources.jaeger_api import JaegerAPIError, fetch_trace

    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = bytes(16 * MiB)
    body = b"".join([*(compressor.compress(zeros) for _ in range(64)), compressor.flush()])

    class Bomb(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Bomb)  # one thread, started before
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        with address_space_limit(400 * MiB), pytest.raises(JaegerAPIError, match="limit"):
            fetch_trace(url, "4bf92f3577b34da6a3ce929d0e0e4736", timeout=30)
    finally:
        server.shutdown()
        server.server_close()


def test_every_gzip_member_is_charged_to_the_budget() -> None:
    """A record of tiny empty gzip members inflates to nothing but costs CPU per member: each
    is an item of the budget, so the item (and CPU) limits stop it."""
    from tracectx.viz.sources.inflate import inflate_bytes
    from tracectx.viz.sources.limits import budgeted

    empty = gzip.compress(b"", mtime=0)  # one 20-byte member
    limits = Limits(max_inflated=MiB, max_ratio=100, max_document=MiB, max_items=1000)
    with budgeted(limits) as budget:
        inflate_bytes(empty * 5000, limits)
    assert budget.refused is not None and "items" in budget.refused
    with budgeted(limits) as budget:
        assert inflate_bytes(empty * 500, limits) == (b"", None, False)
    assert budget.refused is None and budget.items == 500
