"""``--format jaeger-json``: a Jaeger export comes back as it went in (typed tags, log times,
process tags, warnings, flags, references), plus one vocabulary of role tags.

`EXPORT` is shaped as Jaeger's query service answers ``GET /api/traces/{id}`` (what the UI's
"Download JSON" saves): numbers as JSON numbers (a ``float64`` 1 written as ``1`` by Go),
``binary`` as base64, ``warnings`` null unless set, every span with ``flags``.
"""

from __future__ import annotations

import copy
import json
from base64 import b64encode

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracectx import semconv as sc
from tracectx.cli import main
from tracectx.viz import analyse, loads_spans
from tracectx.viz.renderers import annotated_jaeger_json
from tracectx.viz.renderers.jaeger import ESCAPED_TAG
from tracectx.viz.sources.memory import from_readable_spans

TRACE = "6d6a7f3e5b1c4f2a9e8d7c6b5a493827"
ADDED = {sc.ATTR_ROLE, ESCAPED_TAG}


def _span(sid, name, pid, start, duration, tags, *, refs=(), logs=(), warnings=None):
    return {
        "traceID": TRACE,
        "spanID": sid,
        "flags": 1,
        "operationName": name,
        "references": [{"refType": t, "traceID": TRACE, "spanID": p} for t, p in refs],
        "startTime": start,
        "duration": duration,
        "tags": tags,
        "logs": list(logs),
        "processID": pid,
        "warnings": warnings,
    }


EXPORT = {
    "data": [
        {
            "traceID": TRACE,
            "spans": [
                _span(
                    "1000000000000001",
                    "POST /checkout",
                    "p1",
                    1_700_000_000_000_000,
                    52_000,
                    [
                        {"key": "span.kind", "type": "string", "value": "server"},
                        {"key": "http.response.status_code", "type": "int64", "value": 200},
                        {"key": "sampler.param", "type": "float64", "value": 1},
                        {"key": "sampler.type", "type": "string", "value": "const"},
                    ],
                ),
                _span(
                    "1000000000000002",
                    "charge card",
                    "p2",
                    1_700_000_000_010_000,
                    30_000,
                    [
                        {"key": "span.kind", "type": "string", "value": "client"},
                        {"key": "http.response.status_code", "type": "int64", "value": 500},
                        {"key": "retryable", "type": "bool", "value": False},
                        {"key": "payload.digest", "type": "binary", "value": "3q2+7w=="},
                        {"key": "error", "type": "bool", "value": True},
                        {"key": "otel.status_code", "type": "string", "value": "ERROR"},
                        {"key": "otel.status_description", "type": "string", "value": "declined"},
                    ],
                    refs=[("CHILD_OF", "1000000000000001")],
                    logs=[
                        {
                            "timestamp": 1_700_000_000_031_337,
                            "fields": [
                                {"key": "event", "type": "string", "value": "exception"},
                                {"key": "exception.type", "type": "string", "value": "Declined"},
                                {"key": "attempt", "type": "int64", "value": 3},
                            ],
                        },
                        {
                            "timestamp": 1_700_000_000_035_000,
                            "fields": [{"key": "message", "type": "string", "value": "gave up"}],
                        },
                    ],
                    warnings=["clock skew adjustment disabled; not applying delta of 35.2ms"],
                ),
                _span(
                    "1000000000000003",
                    "send receipt",
                    "p1",
                    1_700_000_000_060_000,
                    1_000,
                    [{"key": "error", "type": "string", "value": "true"}],
                    refs=[("FOLLOWS_FROM", "1000000000000001")],
                ),
            ],
            "processes": {
                "p1": {
                    "serviceName": "checkout",
                    "tags": [
                        {"key": "hostname", "type": "string", "value": "checkout-7d9f"},
                        {"key": "jaeger.version", "type": "string", "value": "Go-2.30.0"},
                        {"key": "ip", "type": "string", "value": "10.0.3.7"},
                    ],
                },
                "p2": {
                    "serviceName": "payments",
                    "tags": [{"key": "k8s.pod.restarts", "type": "int64", "value": 2}],
                },
            },
            "warnings": None,
        }
    ],
    "total": 0,
    "limit": 0,
    "offset": 0,
    "errors": None,
}


def _export(doc):
    return annotated_jaeger_json(analyse(loads_spans(json.dumps(doc))))


def _normal(doc, drop=frozenset()):
    """Spans by id with their process resolved and the `drop` tags left out."""
    out = {}
    for trace in doc["data"]:
        for span in trace["spans"]:
            span = copy.deepcopy(span)
            span["process"] = trace["processes"][span.pop("processID")]
            span["tags"] = [t for t in span["tags"] if t["key"] not in drop]
            out[span["spanID"]] = span
    return out


def _added(before, after):
    """The tags `after` has that `before` had not, per span."""
    original = {sid: {t["key"] for t in s["tags"]} for sid, s in _normal(before).items()}
    return {
        sid: {t["key"]: t["value"] for t in span["tags"] if t["key"] not in original[sid]}
        for sid, span in _normal(after).items()
    }


def test_jaeger_export_round_trips_apart_from_the_role_tags():
    exported = _export(EXPORT)
    assert _normal(exported, ADDED) == _normal(EXPORT)
    assert json.loads(json.dumps(exported)) == exported  # plain JSON, numbers stay numbers
    status = next(
        t
        for t in _normal(exported)["1000000000000002"]["tags"]
        if t["key"] == "http.response.status_code"
    )
    assert status == {"key": "http.response.status_code", "type": "int64", "value": 500}


def test_roles_use_the_runtime_vocabulary_and_say_escaped():
    added = _added(EXPORT, _export(EXPORT))
    assert added["1000000000000002"] == {sc.ATTR_ROLE: "origin"}
    assert added["1000000000000001"] == {sc.ATTR_ROLE: "absorbed"}
    # The receipt failed on its own (FOLLOWS_FROM is async) and nothing handled it.
    assert added["1000000000000003"] == {sc.ATTR_ROLE: "origin"}
    exported = json.dumps(_export(EXPORT))
    assert "tracectx.viz.role" not in exported and "propagator" not in exported


def test_an_escaped_error_is_flagged_on_its_last_span():
    doc = copy.deepcopy(EXPORT)
    root = doc["data"][0]["spans"][0]
    root["tags"].append({"key": "error", "type": "bool", "value": True})
    added = _added(doc, _export(doc))
    assert added["1000000000000001"] == {sc.ATTR_ROLE: "propagated", ESCAPED_TAG: True}


def test_exporting_an_export_changes_nothing():
    once = _export(EXPORT)
    assert _export(once) == once


def test_sdk_spans_get_each_tag_once_and_typed(spans, tmp_path):
    from tests.viz.conftest import produce_pipeline

    produce_pipeline()
    analyses = analyse(from_readable_spans(spans.get_finished_spans()))
    exported = annotated_jaeger_json(analyses)
    for trace in exported["data"]:
        for span in trace["spans"]:
            keys = [t["key"] for t in span["tags"]]
            assert len(keys) == len(set(keys)), keys
            for tag in span["tags"]:
                if tag["key"] == "error":
                    assert tag == {"key": "error", "type": "bool", "value": True}
                assert tag["type"] in ("string", "bool", "int64", "float64")
                assert tag["type"] != "string" or isinstance(tag["value"], str)
            for log in span["logs"]:
                assert log["timestamp"] >= span["startTime"]
    roles = {
        t["value"]
        for trace in exported["data"]
        for s in trace["spans"]
        for t in s["tags"]
        if t["key"] == sc.ATTR_ROLE
    }
    assert roles <= {"origin", "propagated", "absorbed"} and "origin" in roles


def test_cli_writes_the_export(tmp_path, capsys):
    src = tmp_path / "download.json"
    src.write_text(json.dumps(EXPORT))
    out = tmp_path / "annotated.json"
    assert main(["graph", str(src), "--format", "jaeger-json", "-o", str(out)]) == 0
    assert _normal(json.loads(out.read_text()), ADDED) == _normal(EXPORT)


# --- any Jaeger export round-trips --------------------------------------------------------

_keys = st.text("abcdefghij._-", min_size=1, max_size=12).filter(
    lambda k: (
        k not in ("event", "error", "span.kind", "otel.status_description")
        and not k.startswith("tracectx.")
    )
)
_finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
_typed = st.one_of(
    st.tuples(st.just("string"), st.text(max_size=20)),
    st.tuples(st.just("bool"), st.booleans()),
    st.tuples(st.just("int64"), st.integers(-(2**63), 2**63 - 1)),
    st.tuples(st.just("float64"), _finite.filter(lambda f: abs(f) < 2**53)),
    st.tuples(st.just("binary"), st.binary(max_size=8).map(lambda b: b64encode(b).decode())),
)


def _tag_lists(max_size=5):
    return st.dictionaries(_keys, _typed, max_size=max_size).map(
        lambda d: [{"key": k, "type": t, "value": v} for k, (t, v) in d.items()]
    )


@st.composite
def _exports(draw):
    n = draw(st.integers(1, 5))
    pids = ["p1", "p2"]
    spans = []
    for i in range(n):
        start = draw(st.integers(1, 2**50))
        logs = [
            {"timestamp": start + draw(st.integers(0, 10**6)), "fields": fields}
            for fields in draw(st.lists(_tag_lists(3), max_size=2))
        ]
        named = draw(st.booleans())
        if named and logs:
            logs[0]["fields"].insert(0, {"key": "event", "type": "string", "value": "x"})
        refs = [("CHILD_OF", spans[draw(st.integers(0, i - 1))]["spanID"])] if i else []
        spans.append(
            _span(
                f"{i + 1:016x}",
                draw(st.text(max_size=10)),
                draw(st.sampled_from(pids)),
                start,
                draw(st.integers(0, 10**9)),
                draw(_tag_lists()),
                refs=refs,
                logs=logs,
                warnings=draw(st.none() | st.lists(st.text(max_size=20), min_size=1, max_size=2)),
            )
        )
    processes = {
        pid: {
            "serviceName": draw(st.text("abc", min_size=1, max_size=4)),
            "tags": draw(_tag_lists(3)),
        }
        for pid in pids
    }
    return {"data": [{"traceID": TRACE, "spans": spans, "processes": processes, "warnings": None}]}


def _canonical(doc):
    """`_normal` with float64 values compared as floats (Go writes 2.0 as 2) and processes
    compared by content (the export renumbers them)."""
    out = _normal(doc, ADDED)
    for span in out.values():
        for tag in [*span["tags"], *span["process"]["tags"]] + [
            f for log in span["logs"] for f in log["fields"]
        ]:
            if tag["type"] == "float64":
                tag["value"] = float(tag["value"])
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_exports())
def test_any_jaeger_export_round_trips(doc):
    assert _canonical(_export(doc)) == _canonical(doc)
