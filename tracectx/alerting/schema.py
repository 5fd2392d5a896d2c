"""JSON Schema of alert-rule files (YAML or JSON), validated with jsonschema.

Numbers reach it finite (the YAML reader refuses ``.nan``/``.inf``); every list and mapping has
a size bound so validation time is bounded too."""

from __future__ import annotations

from typing import Any

__all__ = ["SCHEMA"]

_NAME = {"type": "string", "minLength": 1, "maxLength": 200}
_KIND = {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$", "maxLength": 64}
_SECONDS = {"type": "number", "exclusiveMinimum": 0, "maximum": 30 * 86400}
_AMOUNT = {"type": "number", "minimum": 0, "maximum": 1e12}

_RULE: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name"],
    "properties": {
        "name": _NAME,
        "resource": {"type": "string", "minLength": 1, "maxLength": 500},
        "kinds": {"type": "array", "items": _KIND, "maxItems": 64},
        "window": _SECONDS,
        "threshold": _AMOUNT,
        "group_by": {"type": "array", "items": _NAME, "maxItems": 16},
        "cooldown": {"type": "number", "minimum": 0, "maximum": 30 * 86400},
        "actions": {"type": "array", "items": _NAME, "maxItems": 16},
        "error_weights": {
            "type": "object",
            "propertyNames": _KIND,
            "additionalProperties": _AMOUNT,
            "maxProperties": 64,
        },
        "base_threshold": _AMOUNT,
        "decay_factor": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
    },
    "oneOf": [
        {"required": ["threshold"], "not": {"required": ["error_weights"]}},
        {"required": ["error_weights", "base_threshold"], "not": {"required": ["threshold"]}},
    ],
}

_SINK: dict[str, Any] = {
    "type": "object",
    "required": ["type"],
    "additionalProperties": False,
    "properties": {
        "type": {"enum": ["alertmanager", "webhook", "log"]},
        "url": {"type": "string", "pattern": "^https?://", "maxLength": 2000},
        "headers": {
            "type": "object",
            "additionalProperties": {"type": "string", "maxLength": 8192},
            "maxProperties": 64,
        },
        "ttl": _SECONDS,
        "timeout": _SECONDS,
    },
    "if": {"properties": {"type": {"enum": ["alertmanager", "webhook"]}}},
    "then": {"required": ["url"]},
}

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "tracectx alert rules",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "alert_rules": {"type": "array", "items": _RULE, "maxItems": 1000},
        "sinks": {
            "type": "object",
            "propertyNames": {"pattern": "^[A-Za-z0-9_.-]{1,100}$"},
            "additionalProperties": _SINK,
            "maxProperties": 100,
        },
        "default_actions": {"type": "array", "items": _NAME, "maxItems": 16},
        "jaeger": {"type": "string", "maxLength": 2000},
        "redis": {"type": "string", "pattern": "^rediss?://", "maxLength": 2000},
        "resend_interval": _SECONDS,
        "cluster_quiet": _SECONDS,
        "max_groups_per_rule": {"type": "integer", "minimum": 1, "maximum": 10_000_000},
        # authenticates hand-over states (see tracectx.alerting.handover); its length is
        # checked by `load_config`, whose messages never show it (jsonschema's would)
        "state_key": {},
    },
}
