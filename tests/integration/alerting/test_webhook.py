"""The generic webhook sink (how SMS and chat gateways are reached) against a real HTTP server."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.alerting.conftest import raise_on
from tests.alerting.rules import sentinel_rule
from tracectx.alerting import AlertEngine, ErrorStreamProcessor, WebhookSink
from tracectx.testing import plugged

pytestmark = pytest.mark.integration


@pytest.fixture
def gateway():
    received: list[tuple[dict, dict]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            received.append((dict(self.headers), json.loads(body)))
            self.send_response(202)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/sms", received
    server.shutdown()


def test_sms_webhook_gets_the_alert_with_its_traces(gateway):
    url, received = gateway
    sink = WebhookSink(url, headers={"Authorization": "Bearer t0ken"})
    engine = AlertEngine(
        [sentinel_rule(actions=["sms"])],
        sinks={"sms": sink},
        jaeger_template="http://jaeger:16686/trace/{trace_id}",
    )
    with plugged(ErrorStreamProcessor([engine.observe])):
        for _ in range(11):
            raise_on("payment", account_id="acc_123")
    assert sink.dispatcher.flush(10)
    ((headers, body),) = received
    assert headers["Authorization"] == "Bearer t0ken"
    assert body["status"] == "firing" and body["group"] == {"account_id": "acc_123"}
    assert body["labels"]["alertname"] == "payment-business-burst"
    notes = body["annotations"]
    assert notes["kind"] == "BUSINESS" and len(notes["trace_ids"].split(",")) == 5
    assert notes["jaeger"].startswith("http://jaeger:16686/trace/")
    engine.close()


def test_dead_webhook_is_retried_then_counted_never_raised():
    sink = WebhookSink("http://127.0.0.1:9/nothing-listens", attempts=2)
    engine = AlertEngine([sentinel_rule(actions=["sms"])], sinks={"sms": sink})
    with plugged(ErrorStreamProcessor([engine.observe])):
        for _ in range(11):
            raise_on("payment", account_id="acc_1")
    assert sink.dispatcher.flush(20)
    assert (sink.dispatcher.failed, sink.dispatcher.delivered) == (1, 0)
    engine.close()


def test_webhook_body_never_carries_a_sensitive_group_value(gateway):
    url, received = gateway
    sink = WebhookSink(url)
    rule = sentinel_rule(actions=["sms"], group_by=["card_number"], threshold=0)
    engine = AlertEngine([rule], sinks={"sms": sink})
    with plugged(ErrorStreamProcessor([engine.observe])):
        raise_on("payment", card_number="4111111111111111")
    assert sink.dispatcher.flush(10)
    ((_, body),) = received
    assert "4111111111111111" not in json.dumps(body)  # nor in "key", which used to carry it
    assert body["group"] == {"card_number": "[REDACTED]"}
    assert body["labels"]["card_number"] == "[REDACTED]"
    engine.close()
