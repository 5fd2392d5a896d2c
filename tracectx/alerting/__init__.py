"""Responding to errors: Sentinel-style rules over the error stream, clustered alerts, sinks.

    from tracectx import alerting
    alerting.register_rule(name="payment-burst", resource="payment", kinds=["BUSINESS"],
                           threshold=10, window=300, group_by=["account_id"], actions=["sms"])
    engine = alerting.default_engine()
    engine.add_sink("sms", alerting.WebhookSink("http://sms-gateway/send"))
    alerting.install()            # adds the error-stream SpanProcessor to the tracer provider

or from a file::

    alerting.install(alerting.build_engine(alerting.load_config(Path("alerts.yaml"))))
"""

from __future__ import annotations

import threading

from opentelemetry import trace

from tracectx.alerting.alerts import Alert
from tracectx.alerting.config import AlertConfig, AlertConfigError, build_engine, load_config
from tracectx.alerting.engine import AlertEngine
from tracectx.alerting.events import ErrorEvent, event_from_span
from tracectx.alerting.metrics import count_errors
from tracectx.alerting.processor import ErrorStreamProcessor
from tracectx.alerting.rules import Rule, RuleError
from tracectx.alerting.sinks import AlertmanagerSink, CallableSink, LogSink, Sink, WebhookSink
from tracectx.alerting.windows import MemoryWindows, RedisWindows, Windows

__all__ = [
    "Alert",
    "AlertConfig",
    "AlertConfigError",
    "AlertEngine",
    "AlertmanagerSink",
    "CallableSink",
    "ErrorEvent",
    "ErrorStreamProcessor",
    "LogSink",
    "MemoryWindows",
    "RedisWindows",
    "Rule",
    "RuleError",
    "Sink",
    "WebhookSink",
    "Windows",
    "build_engine",
    "count_errors",
    "default_engine",
    "event_from_span",
    "install",
    "load_config",
    "register_rule",
    "reset_alerting",
]

_lock = threading.Lock()
_default: AlertEngine | None = None


def default_engine() -> AlertEngine:
    """The process-wide engine `register_rule` and `install` use by default."""
    global _default
    with _lock:
        if _default is None:
            _default = AlertEngine()
        return _default


def register_rule(rule: Rule | None = None, /, **fields: object) -> Rule:
    """Add a rule to the default engine: a `Rule`, or its fields as keywords."""
    return default_engine().add_rule(rule if rule is not None else Rule(**fields))  # type: ignore[arg-type]


def install(
    engine: AlertEngine | None = None, *, provider: object = None, metrics: bool = True
) -> ErrorStreamProcessor:
    """Start `engine` (default: the default engine) and feed it every error span of
    `provider` (default: the global SDK tracer provider); also count errors if `metrics`."""
    engine = engine or default_engine()
    engine.start()
    subscribers = [engine.submit, *([count_errors] if metrics else [])]
    processor = ErrorStreamProcessor(subscribers)
    target = provider or trace.get_tracer_provider()
    add = getattr(target, "add_span_processor", None)
    if add is None:
        raise TypeError("install() needs an SDK TracerProvider (set one before installing)")
    add(processor)
    return processor


def reset_alerting() -> None:
    """Close and forget the default engine (tests)."""
    global _default
    with _lock:
        engine, _default = _default, None
    if engine is not None:
        engine.close()
