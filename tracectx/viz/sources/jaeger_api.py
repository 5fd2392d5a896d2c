"""Fetch traces from Jaeger's HTTP query API: api_v3 first, v1 for older servers."""

from __future__ import annotations

from typing import Any

from tracectx.viz.model import SpanSet

__all__ = ["JaegerAPIError", "fetch_service", "fetch_trace", "parse_response"]


class JaegerAPIError(RuntimeError):
    """Jaeger could not be reached or answered something we cannot read."""


def _client(base_url: str, timeout: float) -> Any:
    try:
        import httpx
    except ImportError as exc:  # pragma: no cover
        raise JaegerAPIError(
            "fetching from Jaeger needs the viz extra: pip install tracectx[viz]"
        ) from exc
    return httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout)


def _get(client: Any, path: str, params: dict[str, str] | None = None) -> Any:
    import httpx

    try:
        response = client.get(path, params=params)
    except httpx.HTTPError as exc:
        raise JaegerAPIError(f"Jaeger at {client.base_url} unreachable: {exc}") from exc
    if response.status_code == 404:
        return None
    if response.status_code >= 400:
        raise JaegerAPIError(
            f"Jaeger {path} answered {response.status_code}: {response.text[:200]}"
        )
    return parse_response(path, response.content)


def parse_response(path: str, body: bytes) -> Any:
    """The JSON document of a Jaeger answer; `JaegerAPIError` when it is not JSON (or nested
    too deep to read). The document itself is read by `parse_document`, which never raises."""
    from tracectx.viz.sources import loads_json

    try:
        return loads_json(body)
    except ValueError as exc:
        raise JaegerAPIError(f"Jaeger {path} answered non-JSON: {exc}") from None


def fetch_trace(base_url: str, trace_id: str, *, timeout: float = 10.0) -> SpanSet:
    """One trace by id: ``/api/v3/traces/{id}``, else v1 ``/api/traces/{id}``."""
    from tracectx.viz.sources import parse_document

    with _client(base_url, timeout) as client:
        doc = _get(client, f"/api/v3/traces/{trace_id}")
        if doc is None:
            doc = _get(client, f"/api/traces/{trace_id}")
        if doc is None:
            raise JaegerAPIError(f"trace {trace_id} not found in Jaeger at {base_url}")
        return parse_document(doc)


def fetch_service(
    base_url: str, service: str, *, lookback: str = "1h", limit: int = 20, timeout: float = 10.0
) -> SpanSet:
    """Recent traces of a service (api_v3 ``/api/v3/traces?query.serviceName=``, else v1)."""
    import datetime as dt

    from tracectx.viz.sources import parse_document

    hours = float(lookback.rstrip("h")) if lookback.endswith("h") else 1.0
    now = dt.datetime.now(dt.UTC)
    params = {
        "query.service_name": service,
        "query.serviceName": service,
        "query.start_time_min": (now - dt.timedelta(hours=hours)).isoformat(),
        "query.start_time_max": now.isoformat(),
        "query.search_depth": str(limit),
    }
    with _client(base_url, timeout) as client:
        doc = _get(client, "/api/v3/traces", params)
        if doc is None:
            doc = _get(
                client,
                "/api/traces",
                {"service": service, "lookback": lookback, "limit": str(limit)},
            )
        if doc is None:
            raise JaegerAPIError(f"no trace search API at {base_url}")
        return parse_document(doc)
