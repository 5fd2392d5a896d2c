"""Span attribute and event names of the tracectx error contract (what the visualiser reads).

See README "Span contract" for the table. Names are stable: changing one is a breaking change.
"""

from __future__ import annotations

__all__ = [
    "ATTR_ATTEMPT",
    "ATTR_CAUSE_ID",
    "ATTR_CODE",
    "ATTR_ERROR_TYPE",
    "ATTR_ID",
    "ATTR_KIND",
    "ATTR_MEMBER_IDS",
    "ATTR_META_PREFIX",
    "ATTR_ORIGIN_SPAN_ID",
    "ATTR_ORIGIN_TRACE_ID",
    "ATTR_ROLE",
    "EVENT_HANDLED",
    "EVENT_RETRY",
    "ROLE_ABSORBED",
    "ROLE_ORIGIN",
    "ROLE_PROPAGATED",
]

ATTR_ERROR_TYPE = "error.type"  # OTel semantic conventions
ATTR_KIND = "tracectx.error.kind"
ATTR_CODE = "tracectx.error.code"
ATTR_ID = "tracectx.error.id"
ATTR_ROLE = "tracectx.error.role"
ATTR_ORIGIN_SPAN_ID = "tracectx.error.origin_span_id"
ATTR_ORIGIN_TRACE_ID = "tracectx.error.origin_trace_id"
ATTR_CAUSE_ID = "tracectx.error.cause_id"
ATTR_META_PREFIX = "tracectx.error.meta."
# On a span an exception group leaves: the ids of its leaf members, comma-separated (the span's
# own tracectx.error.id is the first member's: a group carries its first member's identity).
ATTR_MEMBER_IDS = "tracectx.error.member_ids"
ATTR_ATTEMPT = "tracectx.retry.attempt"

EVENT_HANDLED = "tracectx.error.handled"
EVENT_RETRY = "tracectx.retry"

ROLE_ORIGIN = "origin"
ROLE_PROPAGATED = "propagated"
ROLE_ABSORBED = "absorbed"
