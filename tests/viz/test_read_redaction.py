"""A span file written elsewhere may carry raw secrets in bound metadata: every output of the
visualiser masks ``tracectx.error.meta.<key>`` values whose key looks sensitive."""

from __future__ import annotations

import json

import pytest

from tracectx.cli import main
from tracectx.viz import analyse, loads_spans

SECRETS = ("hunter2-raw", "sk_live_raw", "alice-raw", "tok-raw")
TRACE = "5bf92f3577b34da6a3ce929d0e0e4736"
META = {
    "tracectx.error.meta.password": "hunter2-raw",
    "tracectx.error.meta.api_key": "sk_live_raw",
    "tracectx.error.meta.creds.user": "alice-raw",  # a flattened nested mapping
    "tracectx.error.meta.order_id": "o-77",
}
ORIGIN_ATTRS = {
    "tracectx.error.id": "e1",
    "tracectx.error.role": "origin",
    "tracectx.error.kind": "BUSINESS",
    **META,
}


def _otlp() -> dict:
    attrs = [{"key": k, "value": {"stringValue": v}} for k, v in ORIGIN_ATTRS.items()]
    attrs.append(
        {
            "key": "tracectx.error.meta.session",
            "value": {
                "kvlistValue": {"values": [{"key": "t", "value": {"stringValue": "tok-raw"}}]}
            },
        }
    )
    return {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "a"}}]
                },
                "scopeSpans": [
                    {
                        "spans": [
                            {"traceId": TRACE, "spanId": "1" * 16, "name": "root"},
                            {
                                "traceId": TRACE,
                                "spanId": "2" * 16,
                                "parentSpanId": "1" * 16,
                                "name": "charge",
                                "status": {"code": 2},
                                "attributes": attrs,
                                "events": [{"name": "exception", "attributes": attrs}],
                            },
                        ]
                    }
                ],
            }
        ]
    }


def _jaeger() -> dict:
    tags = [{"key": k, "type": "string", "value": v} for k, v in ORIGIN_ATTRS.items()]
    tags.append({"key": "tracectx.error.meta.db.token", "type": "string", "value": "tok-raw"})
    return {
        "data": [
            {
                "traceID": TRACE,
                "spans": [
                    {"traceID": TRACE, "spanID": "1" * 16, "operationName": "root"},
                    {
                        "traceID": TRACE,
                        "spanID": "2" * 16,
                        "operationName": "charge",
                        "references": [
                            {"refType": "CHILD_OF", "traceID": TRACE, "spanID": "1" * 16}
                        ],
                        "tags": [*tags, {"key": "error", "value": True}],
                        "logs": [{"fields": tags}],
                    },
                ],
            }
        ]
    }


@pytest.mark.parametrize("doc", [_otlp(), _jaeger()], ids=["otlp", "jaeger"])
def test_metadata_is_masked_on_read(doc):
    [a] = analyse(loads_spans(json.dumps(doc)))
    [err] = a.errors
    assert err.metadata["password"] == "[REDACTED]" and err.metadata["order_id"] == "o-77"
    assert err.metadata["creds.user"] == "[REDACTED]"


@pytest.mark.parametrize("doc", [_otlp(), _jaeger()], ids=["otlp", "jaeger"])
@pytest.mark.parametrize("fmt", ["terminal", "html", "mermaid", "dot", "json", "jaeger-json"])
def test_no_output_format_shows_a_secret(tmp_path, capsys, doc, fmt):
    path = tmp_path / "spans.json"
    path.write_text(json.dumps(doc))
    assert main(["graph", str(path), "--format", fmt, "--full"]) == 0
    out = capsys.readouterr().out
    assert "charge" in out
    for secret in SECRETS:
        assert secret not in out
    if fmt in ("terminal", "json", "jaeger-json"):
        assert "o-77" in out and "[REDACTED]" in out
