"""Load alert rules and sinks from YAML (or JSON), validated against `SCHEMA`.

Hostile files are refused with a clear `AlertConfigError`: more than 1 MB, YAML aliases (the
"billion laughs" shape), non-UTF-8 bytes, syntax errors (with line and column) and schema
violations (with the path of the offending field).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from tracectx.alerting.engine import AlertEngine
from tracectx.alerting.rules import Rule, RuleError
from tracectx.alerting.schema import SCHEMA
from tracectx.alerting.sinks import AlertmanagerSink, LogSink, Sink, WebhookSink
from tracectx.alerting.windows import RedisWindows

__all__ = ["AlertConfig", "AlertConfigError", "build_engine", "load_config"]

MAX_BYTES = 1024 * 1024
MAX_DEPTH = 32
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


def _read(source: str | bytes | Path, origin: str) -> Any:
    raw = source.read_bytes() if isinstance(source, Path) else source
    if len(raw) > MAX_BYTES:
        raise AlertConfigError(f"{origin}: {len(raw)} bytes, more than {MAX_BYTES}")
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise AlertConfigError(f"{origin}: not UTF-8 (byte {exc.start})") from None
    try:
        depth = 0
        for event in yaml.parse(raw, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.AliasEvent):
                raise AlertConfigError(f"{origin}: YAML aliases are not allowed")
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    raise AlertConfigError(f"{origin}: nests deeper than {MAX_DEPTH} levels")
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
        return yaml.safe_load(raw)
    except RecursionError:
        raise AlertConfigError(f"{origin}: nests too deeply") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise AlertConfigError(f"{origin}: invalid YAML{where}: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise AlertConfigError(f"{origin}: invalid YAML: {exc}") from None


def _path(error: jsonschema.ValidationError) -> str:
    out = ""
    for part in error.absolute_path:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out.lstrip(".") or "(top level)"


def load_config(source: str | bytes | Path) -> AlertConfig:
    """Parse and validate an alert file: a `Path`, or the YAML/JSON text itself."""
    origin = str(source) if isinstance(source, Path) else "alert config"
    data = _read(source, origin)
    if data is None:
        data = {}
    errors = sorted(_validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [f"{_path(e)}: {e.message[:300]}" for e in errors[:5]]
        more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
        raise AlertConfigError(f"{origin}: " + "; ".join(lines) + more)
    try:
        rules = [Rule(**spec) for spec in data.get("alert_rules", [])]
    except RuleError as exc:
        raise AlertConfigError(f"{origin}: {exc}") from None
    sinks = dict(data.get("sinks", {}))
    names = {*sinks, "log"}
    for rule in rules:
        missing = [a for a in rule.actions if isinstance(a, str) and a not in names]
        if missing:
            raise AlertConfigError(f"{origin}: rule {rule.name!r} uses undefined sinks {missing}")
    return AlertConfig(
        rules=rules,
        sinks=sinks,
        default_actions=tuple(data.get("default_actions", ("log",))),
        jaeger=data.get("jaeger"),
        redis=data.get("redis"),
        resend_interval=float(data.get("resend_interval", 60.0)),
        cluster_quiet=float(data.get("cluster_quiet", 300.0)),
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
    }
    if config.redis:
        settings["windows"] = RedisWindows(config.redis)
    settings.update(overrides)
    return AlertEngine(config.rules, **settings)
