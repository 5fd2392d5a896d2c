"""An alert: one group of errors (a rule and its group values, or a kind+resource+type+code
cluster), with what a responder needs — trace ids, error ids, kind, code, Jaeger links.

Its outputs (``labels()``, ``annotations()``, ``to_dict()``, ``to_alertmanager()``) are what
leaves the process: group values pass through `tracectx.redaction.redact` (a ``password`` or
``card_number`` group shows the mask), and every text that came from errors or spans (group
values, resource, service, error type, code) is cut to `MAX_LABEL_VALUE` characters.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import re
from collections import deque
from typing import Any

from tracectx.alerting.events import ErrorEvent
from tracectx.kinds import KindError, get_kind
from tracectx.redaction import redact

__all__ = ["MAX_LABEL_VALUE", "Alert", "bounded", "label_name"]

MAX_SAMPLES = 5
MAX_LABEL_VALUE = 256
_LABEL = re.compile(r"[^a-zA-Z0-9_]")
_SEVERITY = {"FATAL": "critical", "UNKNOWN": "error", "BUSINESS": "warning", "TRANSIENT": "info"}


def label_name(key: str) -> str:
    """A Prometheus-legal label name for a metadata key."""
    name = _LABEL.sub("_", key) or "_"
    return name if not name[0].isdigit() else "_" + name


def bounded(text: str, limit: int = MAX_LABEL_VALUE) -> str:
    """`text` cut to `limit` characters (``…`` marks the cut)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat().replace("+00:00", "Z")


@dataclasses.dataclass
class Alert:
    """A firing (or resolved) alert. `key` identifies it; ``labels()`` are its identity in
    Alertmanager, ``annotations()`` its details."""

    key: str
    name: str
    kind: str
    resource: str
    group: dict[str, str]
    started_at: float
    error_type: str = ""
    code: str = ""
    service: str = ""
    reason: str = ""
    stack: str = ""
    count: int = 0
    score: float | None = None
    resolved_at: float | None = None
    jaeger_template: str | None = None
    keep_stack: bool = False  # UNKNOWN errors alert with their full stack
    policy: bool = False  # a kind-policy cluster: its error type and code are its identity
    trace_ids: deque[str] = dataclasses.field(default_factory=lambda: deque(maxlen=MAX_SAMPLES))
    error_ids: deque[str] = dataclasses.field(default_factory=lambda: deque(maxlen=MAX_SAMPLES))
    error_types: set[str] = dataclasses.field(default_factory=set)

    def note(self, event: ErrorEvent) -> None:
        """Count `event` into the alert (newest samples kept)."""
        self.count += 1
        if event.trace_id not in self.trace_ids:
            self.trace_ids.append(event.trace_id)
        self.error_ids.append(event.error_id)
        if event.error_type and len(self.error_types) < 16:
            self.error_types.add(event.error_type)
        self.code = self.code or event.code
        self.service = self.service or event.service
        if self.keep_stack and event.stack and not self.stack:
            self.stack = event.stack

    @property
    def severity(self) -> str:
        try:
            base = get_kind(self.kind).base.name  # a custom kind alerts like its base kind
        except KindError:
            base = "UNKNOWN"
        return _SEVERITY.get(base, "warning")

    def jaeger_link(self, trace_id: str | None = None) -> str | None:
        trace_id = trace_id or (self.trace_ids[-1] if self.trace_ids else None)
        if not self.jaeger_template or not trace_id:
            return None
        return self.jaeger_template.format(trace_id=trace_id)

    def shown_group(self) -> dict[str, str]:
        """The group values as they may leave the process: redacted, each bounded."""
        return {k: bounded(str(v)) for k, v in redact(self.group).items()}

    @property
    def public_key(self) -> str:
        """A stable id for the alert across firing and resolved (`key` holds raw group values,
        which may be sensitive, so outputs carry this digest instead)."""
        digest = hashlib.blake2b(self.key.encode("utf-8", "replace"), digest_size=8).hexdigest()
        return f"{bounded(self.name, 100)}:{digest}"

    def labels(self) -> dict[str, str]:
        labels = {
            "alertname": self.name,
            "severity": self.severity,
            "kind": self.kind,
            "resource": bounded(self.resource),
        }
        if self.error_type:
            labels["error_type"] = bounded(self.error_type)
        if self.policy and self.code:
            labels["code"] = bounded(self.code)
        if self.service:
            labels["service"] = bounded(self.service)
        for key, value in self.shown_group().items():
            labels.setdefault(label_name(bounded(key, 100)), value)
        return labels

    def annotations(self) -> dict[str, str]:
        where = bounded(self.resource)
        notes = {
            "summary": f"{self.name}: {self.count} {self.kind} error(s) on {where}",
            "description": self.reason,
            "trace_ids": ",".join(self.trace_ids),
            "error_id": self.error_ids[-1] if self.error_ids else "",
            "error_ids": ",".join(self.error_ids),
            "kind": self.kind,
            "code": bounded(self.code),
            "error_types": ",".join(bounded(t) for t in sorted(self.error_types)),
            "count": str(self.count),
        }
        if self.score is not None:
            notes["score"] = f"{self.score:.2f}"
        link = self.jaeger_link()
        if link:
            notes["jaeger"] = link
        if self.stack:
            notes["stack"] = self.stack
        return {k: v for k, v in notes.items() if v}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view for webhooks and callables."""
        return {
            "key": self.public_key,
            "status": "resolved" if self.resolved_at else "firing",
            "labels": self.labels(),
            "annotations": self.annotations(),
            "group": self.shown_group(),
            "startsAt": _iso(self.started_at),
            "endsAt": _iso(self.resolved_at) if self.resolved_at else None,
        }

    def to_alertmanager(self, now: float, ttl: float) -> dict[str, Any]:
        """The Alertmanager v2 form: firing alerts end `ttl` seconds from now unless re-sent;
        a resolved one carries its (past) end time."""
        ends = max(self.resolved_at if self.resolved_at else now + ttl, self.started_at)
        body: dict[str, Any] = {
            "labels": self.labels(),
            "annotations": self.annotations(),
            "startsAt": _iso(self.started_at),
            "endsAt": _iso(ends),
        }
        link = self.jaeger_link()
        if link:
            body["generatorURL"] = link
        return body
