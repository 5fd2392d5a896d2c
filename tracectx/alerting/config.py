"""Load alert rules and sinks from YAML (or JSON), validated against `SCHEMA`.

Hostile files are refused quickly with a clear `AlertConfigError` (see `yamlsafe`): more than
1 MB or 1,000 rules (counted while parsing), YAML aliases (the "billion laughs" shape), non-UTF-8
bytes, tags beyond YAML's core ones, non-string keys, numbers that are not finite or longer than
100 characters, syntax errors (with line and column) and schema violations (with the path of the
offending field).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema

from tracectx.alerting.engine import AlertEngine
from tracectx.alerting.groups import DEFAULT_MAX_GROUPS
from tracectx.alerting.handover import MIN_STATE_KEY
from tracectx.alerting.rules import Rule, RuleError
from tracectx.alerting.schema import SCHEMA
from tracectx.alerting.sinks import AlertmanagerSink, LogSink, Sink, WebhookSink
from tracectx.alerting.windows import RedisWindows
from tracectx.alerting.yamlsafe import Limits, YAMLDocumentError, format_path, read_yaml
from tracectx.safetext import escape_control

__all__ = ["AlertConfig", "AlertConfigError", "build_engine", "load_config"]

MAX_BYTES = 1024 * 1024
MAX_DEPTH = 32
MAX_RULES = 1000
MAX_MESSAGE = 2000
#: Checked while parsing, before any object is built: a 1 MB file of 38k rules is refused at
#: the 1,001st rule instead of being built and validated.
LIMITS = Limits(
    max_bytes=MAX_BYTES,
    max_depth=MAX_DEPTH,
    max_nodes=100_000,
    max_items=(("alert_rules", MAX_RULES),),
)
_validator = jsonschema.Draft202012Validator(SCHEMA)


class AlertConfigError(ValueError):
    """An alert-rule file could not be used; the message says where and why."""


@dataclasses.dataclass(frozen=True)
class AlertConfig:
    rules: list[Rule]
    sinks: dict[str, Mapping[str, Any]]
    default_actions: tuple[str, ...] = ("log",)
    jaeger: str | None = None
    redis: str | None = None
    resend_interval: float = 60.0
    cluster_quiet: float = 300.0
    max_groups_per_rule: int = DEFAULT_MAX_GROUPS
    #: authenticates hand-over states in Redis (`AlertEngine(state_key=)`); never shown
    state_key: str | None = dataclasses.field(default=None, repr=False)


def _path_key(error: jsonschema.ValidationError) -> list[tuple[int, int, str]]:
    """A sort key for an error's path that never compares an index with a key."""
    return [(1, p, "") if isinstance(p, int) else (2, 0, str(p)) for p in error.absolute_path]


def _refuse(origin: str, why: str) -> AlertConfigError:
    return AlertConfigError(escape_control(f"{origin}: {why}", limit=MAX_MESSAGE))


def load_config(source: str | bytes | Path) -> AlertConfig:
    """Parse and validate an alert file: a `Path`, or the YAML/JSON text itself."""
    origin = str(source) if isinstance(source, Path) else "alert config"
    try:
        if isinstance(source, Path):
            with source.open("rb") as file:  # never more than the limit into memory
                raw: str | bytes = file.read(MAX_BYTES + 1)
        else:
            raw = source
        data = read_yaml(raw, LIMITS)
    except YAMLDocumentError as exc:
        raise _refuse(origin, str(exc)) from None
    if data is None:
        data = {}
    if isinstance(data, dict) and "state_key" in data:
        key = data["state_key"]
        if not isinstance(key, str) or not MIN_STATE_KEY <= len(key.encode()) <= 1024:
            raise _refuse(origin, f"state_key: a string of {MIN_STATE_KEY} to 1024 bytes")
    errors = sorted(_validator.iter_errors(data), key=_path_key)
    if errors:
        lines = [f"{format_path(list(e.absolute_path))}: {e.message[:300]}" for e in errors[:5]]
        more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
        raise _refuse(origin, "; ".join(lines) + more)
    try:
        rules = [Rule(**spec) for spec in data.get("alert_rules", [])]
    except RuleError as exc:
        raise _refuse(origin, str(exc)) from None
    sinks = dict(data.get("sinks", {}))
    names = {*sinks, "log"}
    for rule in rules:
        missing = [a for a in rule.actions if isinstance(a, str) and a not in names]
        if missing:
            raise _refuse(origin, f"rule {rule.name!r} uses undefined sinks {missing}")
    return AlertConfig(
        rules=rules,
        sinks=sinks,
        default_actions=tuple(data.get("default_actions", ("log",))),
        jaeger=data.get("jaeger"),
        redis=data.get("redis"),
        resend_interval=float(data.get("resend_interval", 60.0)),
        cluster_quiet=float(data.get("cluster_quiet", 300.0)),
        max_groups_per_rule=int(data.get("max_groups_per_rule", DEFAULT_MAX_GROUPS)),
        state_key=data.get("state_key"),
    )


def _sink(spec: Mapping[str, Any]) -> Sink:
    options = {k: v for k, v in spec.items() if k in ("ttl", "timeout", "headers")}
    if spec["type"] == "alertmanager":
        options.pop("headers", None)
        return AlertmanagerSink(spec["url"], **options)
    if spec["type"] == "webhook":
        options.pop("ttl", None)
        return WebhookSink(spec["url"], **options)
    return LogSink()


def build_engine(config: AlertConfig, **overrides: Any) -> AlertEngine:
    """An `AlertEngine` for `config` (not started); keyword args override its settings."""
    settings: dict[str, Any] = {
        "sinks": {name: _sink(spec) for name, spec in config.sinks.items()},
        "default_actions": config.default_actions,
        "jaeger_template": config.jaeger,
        "resend_interval": config.resend_interval,
        "cluster_quiet": config.cluster_quiet,
        "max_groups": config.max_groups_per_rule,
    }
    if config.state_key:  # else the engine reads TRACECTX_ALERT_STATE_KEY
        settings["state_key"] = config.state_key
    if config.redis:
        settings["windows"] = RedisWindows(config.redis)
    settings.update(overrides)
    return AlertEngine(config.rules, **settings)
