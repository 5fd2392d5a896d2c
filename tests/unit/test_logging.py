"""structlog processors and the stdlib filter carry trace ids and error fields."""

from __future__ import annotations

import logging

import structlog

from tests.helpers import by_name, hex_span, hex_trace
from tracectx import ErrorKind, bound, new_error, traced
from tracectx.logging import (
    TracectxLogFilter,
    add_bound_metadata,
    add_error_fields,
    add_trace_ids,
    level_by_kind,
)


def _capture():
    structlog.configure(
        processors=[
            add_trace_ids,
            add_bound_metadata,
            add_error_fields,
            level_by_kind,
            structlog.testing.LogCapture(),
        ]
    )
    return structlog.get_config()["processors"][-1]


class TestStructlog:
    def test_trace_ids_error_fields_and_level(self, spans):
        cap = _capture()
        err = new_error(ErrorKind.TRANSIENT, "slow", code="T1", password="p")
        with traced("op"), bound(account_id="a1"):
            structlog.get_logger().error("call failed", exc_info=err)
        entry = cap.entries[0]
        op = by_name(spans, "op")
        assert entry["trace_id"] == hex_trace(op) and entry["span_id"] == hex_span(op)
        assert entry["error_kind"] == "TRANSIENT" and entry["error_code"] == "T1"
        assert entry["error_id"] == err.error_id
        assert entry["error_meta"] == {"password": "[REDACTED]"}
        assert entry["account_id"] == "a1"
        assert entry["level"] == "warning"

    def test_no_span_no_ids(self):
        cap = _capture()
        structlog.get_logger().info("hello")
        assert "trace_id" not in cap.entries[0]


class TestStdlib:
    def test_filter_adds_fields_and_level(self, spans, caplog):
        logger = logging.getLogger("test.tracectx")
        logger.addFilter(TracectxLogFilter())
        err = new_error(ErrorKind.FATAL, "db")
        with caplog.at_level(logging.DEBUG), traced("op"):
            logger.error("boom", exc_info=err)
        record = caplog.records[-1]
        assert record.levelno == logging.CRITICAL
        assert record.error_id == err.error_id
        assert record.trace_id == hex_trace(by_name(spans, "op"))
