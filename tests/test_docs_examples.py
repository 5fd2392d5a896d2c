"""The README's and the guides' examples as printed: the 30-second tour and its policy table, the
alert-rule YAML (docs/alerting.md), the bound-metadata and logging blocks (docs/api.md), the
problem+json answer (docs/http.md); each run, its comments checked."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from pathlib import Path
from typing import Any

import httpx
import structlog
from opentelemetry import trace
from starlette.applications import Starlette
from starlette.routing import Route

from tracectx import ErrorKind, TracedError, bind, classify, new_error, policy_for, traced
from tracectx.alerting import load_config
from tracectx.errors import get_origin
from tracectx_asgi import TracectxMiddleware

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_alerting_guide_yaml_loads():
    blocks = re.findall(r"```yaml\n(.*?)```", (DOCS / "alerting.md").read_text(), flags=re.S)
    assert blocks, "the alerting guide shows an alert file"
    for block in blocks:
        config = load_config(block)
        assert {r.name for r in config.rules} == {"payment-business-burst", "high-risk-error-burst"}
        assert config.redis and config.jaeger


def test_api_guide_bound_metadata_example_is_true(spans):
    """The 'what stays, what travels' block: run it and check each commented result."""
    block = next(
        b
        for b in re.findall(r"```python\n(.*?)```", (DOCS / "api.md").read_text(), flags=re.S)
        if "propagate_keys" in b
    )
    results: list[object] = []
    code = "\n".join(
        line.replace("tracectx.get_bound()", "results.append(tracectx.get_bound())").replace(
            "tracectx.capture()", "results.append(tracectx.capture())"
        )
        for line in block.splitlines()
    )
    exec(code, {"results": results})
    bound, first, second = results
    assert bound == {"account_id": "acc_123", "password": "hunter2"}
    assert set(first) == {"traceparent"}  # type: ignore[arg-type]
    assert set(second) == {"traceparent", "baggage"}  # type: ignore[arg-type]
    assert second["baggage"] == "account_id=acc_123"  # type: ignore[index]


README = DOCS.parent / "README.md"


def _block(path: Path, heading: str, lang: str = "python") -> str:
    """The first `lang` block after the heading."""
    text = path.read_text()
    return re.findall(rf"```{lang}\n(.*?)```", text[text.index(heading) :], flags=re.S)[0]


def test_readme_tour_runs_and_its_comments_are_true(spans):
    """The 30-second tour as printed (it once used `err` after its `except` block: NameError)."""
    block = _block(README, "## 30-second tour")
    shown = ("err.metadata", "err.error_id", "tracectx.is_kind(err, ErrorKind.BUSINESS)")
    code = "\n".join(
        line.replace(
            line.strip().split("  #")[0], f"results.append(({line.strip().split('  #')[0]}, err))"
        )
        if line.strip().split("  #")[0] in shown
        else line
        for line in block.splitlines()
    )
    namespace: dict[str, Any] = {"results": []}
    exec(code, namespace)
    (metadata, err), (eid, _), (is_business, _) = namespace["results"]
    assert metadata == {"account_id": "acc_123"}
    assert re.fullmatch(r"[0-9a-f]{16}", eid) and is_business is True
    same = namespace["same"]
    json.dumps(namespace["envelope"])  # JSON-safe
    assert (same.kind, same.code, same.metadata, same.error_id) == (
        err.kind,
        "E_FUNDS",
        {"account_id": "acc_123"},
        eid,
    )
    assert get_origin(same) == get_origin(err)
    assert namespace["AUTH"].name == "AUTH" and policy_for(namespace["AUTH"]).http_status == 401
    assert classify(TimeoutError()) is ErrorKind.TRANSIENT
    (span,) = [s for s in spans.get_finished_spans() if s.name == "POST /checkout"]
    assert (span.attributes or {})["tracectx.error.role"] == "absorbed"


def test_readme_policy_table_is_the_default_policies():
    text = README.read_text()
    table = text[text.index("| kind | HTTP |") :].split("\n\n", 1)[0].splitlines()[2:]
    alerting = {"never": "NEVER", "by rule": "BY_RULE", "at once": "IMMEDIATE", "always": "ALWAYS"}
    assert [row.split(" | ")[0].strip("| ") for row in table] == [
        "TRANSIENT",
        "BUSINESS",
        "FATAL",
        "UNKNOWN",
    ]
    for row in table:
        name, http, level, alert, retryable = (c.strip() for c in row.strip("|").split("|"))
        policy = policy_for(getattr(ErrorKind, name))
        assert int(http.split()[0]) == policy.http_status
        assert ("Retry-After" in http) == (policy.retry_after is not None)
        assert logging.getLevelName(policy.log_level) == level
        assert policy.alerting.name == next(v for k, v in alerting.items() if alert.startswith(k))
        assert policy.retryable == (retryable == "yes")


async def _post(app: Starlette, path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.post(path)


def test_http_guide_problem_json_is_what_the_middleware_answers():
    """docs/http.md's problem+json answer: same fields, same values but for the ids."""
    shown = json.loads(_block(DOCS / "http.md", "answered with", "json"))

    async def pay(request: Any) -> None:
        raise new_error(ErrorKind.BUSINESS, shown["detail"], code=shown["code"])

    app = Starlette(routes=[Route("/pay", pay, methods=["POST"])])
    app.add_middleware(TracectxMiddleware)
    answer = asyncio.run(_post(app, "/pay"))
    assert answer.headers["content-type"] == "application/problem+json"
    body = answer.json()
    assert set(body) == set(shown)
    ids = {"trace_id", "error_id"}
    assert {k: v for k, v in body.items() if k not in ids} == {
        k: v for k, v in shown.items() if k not in ids
    }
    assert all(len(body[k]) == len(shown[k]) for k in ids)


def test_api_guide_structlog_processors_add_what_they_say(spans, capsys):
    """docs/api.md's structlog configuration, as printed: ids, metadata and the kind's level."""
    exec(_block(DOCS / "api.md", "## Logging"), {})
    try:
        log = structlog.get_logger()
        with traced("checkout"):
            bind(account_id="acc_1")
            try:
                raise new_error(ErrorKind.FATAL, "templates gone", code="E_TEMPLATES")
            except TracedError as err:
                log.info("receipt failed", exc_info=err)
                eid = err.error_id
                trace_id = format(trace.get_current_span().get_span_context().trace_id, "032x")
    finally:
        structlog.reset_defaults()
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["trace_id"] == trace_id and len(line["span_id"]) == 16
    assert line["account_id"] == "acc_1"
    assert (line["error_kind"], line["error_code"], line["error_id"]) == (
        "FATAL",
        "E_TEMPLATES",
        eid,
    )
    assert line["level"] == "critical"  # FATAL's policy, not the info() it was logged with
