"""RFC 9457 problem details for an error, shaped by its kind's policy.

The body says what a client may know: ``type``, ``title``, ``status``, ``instance``, the
tracectx ``code``, ``kind``, ``trace_id`` and ``error_id`` — and ``detail`` only when the
kind's policy allows it *and* the message was written for clients (a `TracedError`); messages
of other exceptions can name hosts, paths or SQL. Never a stack trace or metadata.
"""

from __future__ import annotations

import http
from typing import Any

from tracectx import TracedError, classify, error_id, policy_for

__all__ = ["CONTENT_TYPE", "problem_for"]

CONTENT_TYPE = "application/problem+json"


def problem_for(
    exc: BaseException, *, instance: str, trace_id: str, type_base: str
) -> tuple[int, dict[str, Any], dict[str, str]]:
    """(status, body, extra headers) answering `exc`."""
    kind = classify(exc)
    policy = policy_for(kind)
    status = policy.http_status
    code = exc.code if isinstance(exc, TracedError) else kind.name.lower()
    try:
        title = http.HTTPStatus(status).phrase
    except ValueError:
        title = "Error"
    body: dict[str, Any] = {
        "type": f"{type_base}{code}",
        "title": title,
        "status": status,
    }
    if policy.expose_detail and isinstance(exc, TracedError):
        body["detail"] = exc.message[:1000]
    body.update(
        instance=instance, code=code, kind=kind.name, trace_id=trace_id, error_id=error_id(exc)
    )
    headers = {}
    if policy.retryable and policy.retry_after is not None:
        headers["retry-after"] = str(policy.retry_after)
    return status, body, headers
