"""`tracectx stream --check-propagation`: the traces an instance assembled are checked together
for hops that lost context (the same check as ``tracectx graph --check-propagation``)."""

from __future__ import annotations

from tests.viz.test_propagation_check import _http_pair
from tracectx_stream import SpanStream, StreamSettings
from tracectx_stream.assembler import TraceBuffer


def _analysed(stream: SpanStream, spans: list) -> None:
    for trace_id in sorted({s.trace_id for s in spans}):
        members = [s for s in spans if s.trace_id == trace_id]
        stream._analyse(TraceBuffer(trace_id, 0.0, 0.0, members))


def test_a_lost_hop_across_two_assembled_traces_is_reported():
    stream = SpanStream(StreamSettings("unused:9092", check_propagation=True))
    _analysed(stream, _http_pair("a" * 32, "b" * 32, connected=False))
    report = stream.propagation_report()
    assert report is not None
    [finding] = [f for f in report["findings"] if f["kind"] == "dropped-hop"]
    assert "checkout" in str(finding) and "payments" in str(finding)
    [row] = report["health"]
    assert (row["broken"], row["connected"]) == (1, 0), row


def test_whole_traces_give_no_finding_and_the_check_is_off_by_default():
    stream = SpanStream(StreamSettings("unused:9092", check_propagation=True))
    _analysed(stream, _http_pair("a" * 32, "a" * 32, connected=True))
    report = stream.propagation_report()
    assert report is not None and not report["findings"]
    assert SpanStream(StreamSettings("unused:9092")).propagation_report() is None


def test_the_fleet_flow_page_shows_where_traces_broke():
    from tracectx_stream.command import _flow_page

    stream = SpanStream(StreamSettings("unused:9092", check_propagation=True))
    _analysed(stream, _http_pair("a" * 32, "b" * 32, connected=False))
    page = _flow_page(stream.flow.snapshot(), stream.propagation_check())
    assert "Where the trace broke" in page
    assert "checkout" in page and "payments" in page
    assert "Where the trace broke" not in _flow_page(stream.flow.snapshot())
