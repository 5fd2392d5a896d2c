"""The span contract: one module names it, one reader reads it, the docs/span-contract.md table
matches."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tracectx import ErrorKind, mark_handled, new_error, retry_transient, traced
from tracectx import semconv as sc
from tracectx.contract import read_contract, read_sdk_span

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "span-contract.md"


def _contract_table() -> str:
    return GUIDE.read_text()


def test_every_contract_name_is_in_the_guide_table():
    table = _contract_table()
    names = {
        getattr(sc, n)
        for n in sc.__all__
        if n.startswith(("ATTR_", "EVENT_")) and getattr(sc, n).startswith(("tracectx.", "celery."))
    }
    missing = {n for n in names if f"`{n}" not in table and n not in table}
    assert not missing, f"semconv names missing from the guide's table: {sorted(missing)}"


def test_every_tracectx_name_in_the_guide_table_is_in_semconv():
    values = {getattr(sc, n) for n in sc.__all__}
    rows = "\n".join(line for line in _contract_table().splitlines() if line.startswith("|"))
    written = set(re.findall(r"`(tracectx\.[a-z_.]+)[`=]", rows))
    unknown = {w for w in written if w not in values}
    assert not unknown, f"names in docs/span-contract.md not in tracectx.semconv: {sorted(unknown)}"


def test_reader_sees_origin_metadata_exception_retries_and_handled(spans):
    attempts = iter([TimeoutError("slow"), None])

    @retry_transient(attempts=2, initial=0, jitter=0)
    def flaky() -> None:
        exc = next(attempts)
        if exc is not None:
            raise exc

    with traced("caller"):
        flaky()
        try:
            with traced("inner"):
                raise new_error(ErrorKind.BUSINESS, "no funds", code="E42", password="p", a="1")
        except Exception as exc:
            mark_handled(exc)
            eid = exc.error_id  # type: ignore[attr-defined]
    by_name = {s.name: s for s in spans.get_finished_spans()}
    inner, caller = read_sdk_span(by_name["inner"]), read_sdk_span(by_name["caller"])
    assert inner.has_error and inner.role == "origin" and inner.error_id == eid
    assert (inner.kind, inner.code) == ("BUSINESS", "E42")
    assert inner.metadata == {"password": "[REDACTED]", "a": "1"}
    assert inner.exception_message == "no funds"
    assert caller.role == "absorbed" and not caller.has_error
    assert [h.error_id for h in caller.handled] == [eid]
    assert [(r.attempt, r.kind) for r in caller.retries] == [(1, "TRANSIENT")]


@pytest.mark.parametrize(
    "attributes",
    [
        {sc.ATTR_ID: 5, sc.ATTR_ROLE: ["x"], sc.ATTR_ATTEMPT: "99999999999999"},
        {sc.ATTR_META_PREFIX + "token": "raw-secret"},
    ],
)
def test_reader_is_tolerant_and_redacts(attributes):
    view = read_contract(attributes, [("exception", None), (sc.EVENT_RETRY, {"x": 1})])
    assert not view.has_error
    assert "raw-secret" not in str(view.metadata)


def test_contract_names_are_spelled_only_in_semconv():
    """Writers and readers use the constants, so the contract cannot drift module by module."""
    import ast

    root = Path(__file__).resolve().parents[2]
    values = {
        getattr(sc, n)
        for n in sc.__all__
        if isinstance(getattr(sc, n), str) and getattr(sc, n).startswith(("tracectx.", "celery."))
    }
    offenders = []
    for base in ("tracectx", "integrations"):
        for path in (root / base).rglob("*.py"):
            if path.name == "semconv.py":
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Constant) and node.value in values:
                    offenders.append(f"{path.relative_to(root)}:{node.lineno} {node.value}")
    assert not offenders
