"""Where alerts go: Alertmanager (v2 API), a generic webhook (SMS and chat gateways are
webhooks), a log line, or a Python callable. HTTP sinks deliver from a background `Dispatcher`,
so `send()` never blocks the caller."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import httpx

from tracectx.alerting.alerts import Alert
from tracectx.alerting.delivery import Dispatcher
from tracectx.safetext import escape_control

__all__ = ["AlertmanagerSink", "CallableSink", "LogSink", "Sink", "WebhookSink"]

_LEVELS = {"critical": logging.CRITICAL, "error": logging.ERROR, "warning": logging.WARNING}
_LOG_LIMIT = 1000


def _escaped(value: Any) -> Any:
    """`value` with every string in it (keys too) passed through `escape_control`."""
    if isinstance(value, str):
        return escape_control(value)
    if isinstance(value, dict):
        return {escape_control(str(k)): _escaped(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_escaped(v) for v in value]
    return value


class Sink(Protocol):
    def send(self, alert: Alert) -> None:
        """Deliver a firing alert (or a resolved one: ``alert.resolved_at`` is set)."""

    def close(self) -> None: ...


class LogSink:
    """One log line per alert on ``tracectx.alerts``, at the alert's severity. Text from errors
    and spans is shown escaped (`tracectx.safetext.escape_control`), so a newline or an ANSI
    sequence in a resource or group value cannot forge a log line or drive a terminal; the
    structured ``alert`` field (redacted like every output) is escaped the same way."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self.logger = logger or logging.getLogger("tracectx.alerts")

    def send(self, alert: Alert) -> None:
        state = "resolved" if alert.resolved_at else "firing"
        level = logging.INFO if alert.resolved_at else _LEVELS.get(alert.severity, logging.INFO)
        self.logger.log(
            level,
            "alert %s %s: %s",
            escape_control(alert.name, limit=200),
            state,
            escape_control(alert.annotations().get("summary", ""), limit=_LOG_LIMIT),
            extra={"alert": _escaped(alert.to_dict())},
        )

    def close(self) -> None:
        pass


class CallableSink:
    """Call ``fn(alert)``; exceptions are logged, never raised to the engine."""

    def __init__(self, fn: Callable[[Alert], Any]) -> None:
        self.fn = fn

    def send(self, alert: Alert) -> None:
        try:
            self.fn(alert)
        except Exception:
            logging.getLogger("tracectx.alerting").warning(
                "tracectx: alert callable %r failed", self.fn, exc_info=True
            )

    def close(self) -> None:
        pass


class _HTTPSink:
    def __init__(self, timeout: float, max_queue: int, attempts: int, name: str) -> None:
        self._client = httpx.Client(timeout=timeout)
        self.dispatcher = Dispatcher(self._post, name=name, max_queue=max_queue, attempts=attempts)

    def _post(self, request: tuple[str, Any, Mapping[str, str]]) -> None:
        url, body, headers = request
        self._client.post(url, json=body, headers=dict(headers)).raise_for_status()

    def close(self) -> None:
        self.dispatcher.close()
        self._client.close()


class WebhookSink(_HTTPSink):
    """POST ``alert.to_dict()`` as JSON to `url` (with `headers`, e.g. an auth token)."""

    def __init__(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        timeout: float = 2.0,
        max_queue: int = 1000,
        attempts: int = 5,
    ) -> None:
        super().__init__(timeout, max_queue, attempts, "tracectx-webhook")
        self.url, self.headers = url, dict(headers or {})

    def send(self, alert: Alert) -> None:
        self.dispatcher.put((self.url, alert.to_dict(), self.headers))


class AlertmanagerSink(_HTTPSink):
    """POST to Alertmanager's ``/api/v2/alerts``. A firing alert ends ``ttl`` seconds after each
    send unless re-sent (the engine re-sends firing alerts), a resolved one with its past end."""

    def __init__(
        self,
        url: str,
        *,
        ttl: float = 300.0,
        timeout: float = 2.0,
        max_queue: int = 1000,
        attempts: int = 5,
    ) -> None:
        super().__init__(timeout, max_queue, attempts, "tracectx-alertmanager")
        self.url = url.rstrip("/") + "/api/v2/alerts"
        self.ttl = ttl

    def send(self, alert: Alert) -> None:
        self.dispatcher.put((self.url, [alert.to_alertmanager(time.time(), self.ttl)], {}))
