"""Every span attribute, event and link name of the tracectx contract, in one place.

What recording writes and what every reader (`tracectx.contract`: the visualiser, alerting, the
span-stream consumer) reads. The table in docs/span-contract.md is checked against this module
by a test. Names are stable: changing one is a breaking change.
"""

from __future__ import annotations

__all__ = [
    "ATTR_ATTEMPT",
    "ATTR_BREAKER",
    "ATTR_BREAKER_FROM",
    "ATTR_BREAKER_STATE",
    "ATTR_BREAKER_TO",
    "ATTR_CAUSE_ID",
    "ATTR_CELERY_BEAT_ENTRY",
    "ATTR_CELERY_BEAT_LATE_S",
    "ATTR_CELERY_BEAT_NEXT_DUE",
    "ATTR_CELERY_LOST",
    "ATTR_CELERY_RETRY_WHEN",
    "ATTR_CELERY_REVOKED_SIGNUM",
    "ATTR_CELERY_STATE",
    "ATTR_CELERY_TASK_NAME",
    "ATTR_CODE",
    "ATTR_ERROR_TYPE",
    "ATTR_ID",
    "ATTR_KIND",
    "ATTR_LINK",
    "ATTR_MEMBER_IDS",
    "ATTR_META_PREFIX",
    "ATTR_ORIGIN_SPAN_ID",
    "ATTR_ORIGIN_TRACE_ID",
    "ATTR_RETRY_WAIT_S",
    "ATTR_ROLE",
    "ATTR_TASK_CANCELLED",
    "ATTR_TASK_NAME",
    "EVENT_BREAKER_STATE_CHANGE",
    "EVENT_CELERY_BEAT_LATE",
    "EVENT_EXCEPTION",
    "EVENT_EXPECTED",
    "EVENT_HANDLED",
    "EVENT_RETRY",
    "EXC_MESSAGE",
    "EXC_STACKTRACE",
    "EXC_TYPE",
    "LINK_CHORD_HEADER",
    "LINK_PREVIOUS_ATTEMPT",
    "LINK_PUBLISHER",
    "LOG_EVENT_EXCEPTION",
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
ATTR_RETRY_WAIT_S = "tracectx.retry.wait_s"
ATTR_TASK_CANCELLED = "tracectx.task.cancelled"  # an aio task span whose task was cancelled
ATTR_TASK_NAME = "tracectx.task.name"  # the asyncio task a span started in (ThreadAttributes)
ATTR_LINK = "tracectx.link"  # on a link: why it is there (one of LINK_*)
ATTR_BREAKER = "breaker"  # on EVENT_BREAKER_STATE_CHANGE: the breaker's name
ATTR_BREAKER_FROM = "from"
ATTR_BREAKER_TO = "to"
ATTR_BREAKER_STATE = "tracectx.breaker.state"

# Celery (no OTel semconv names exist for these).
ATTR_CELERY_TASK_NAME = "celery.task.name"
ATTR_CELERY_STATE = "celery.state"
ATTR_CELERY_RETRY_WHEN = "celery.retry.when"
ATTR_CELERY_LOST = "celery.lost"
ATTR_CELERY_REVOKED_SIGNUM = "celery.revoked.signum"
ATTR_CELERY_BEAT_ENTRY = "celery.beat.entry.name"  # schedule, send, run and missed spans
ATTR_CELERY_BEAT_NEXT_DUE = "celery.beat.next_due"
ATTR_CELERY_BEAT_LATE_S = "celery.beat.late_s"
EVENT_CELERY_BEAT_LATE = "celery.beat.late"
LOG_EVENT_EXCEPTION = "tracectx.error.exception"  # the exception log record's event name

EVENT_EXCEPTION = "exception"  # OTel's exception event
EVENT_HANDLED = "tracectx.error.handled"
EVENT_EXPECTED = "tracectx.error.expected"  # a Celery task's `throws=` error: no ERROR status
EVENT_RETRY = "tracectx.retry"
EVENT_BREAKER_STATE_CHANGE = "tracectx.breaker.state_change"

LINK_PREVIOUS_ATTEMPT = "previous_attempt"
LINK_CHORD_HEADER = "chord_header"
LINK_PUBLISHER = "publisher"

# OTel's exception event attributes, as the readers use them.
EXC_TYPE = "exception.type"
EXC_MESSAGE = "exception.message"
EXC_STACKTRACE = "exception.stacktrace"

ROLE_ORIGIN = "origin"
ROLE_PROPAGATED = "propagated"
ROLE_ABSORBED = "absorbed"
