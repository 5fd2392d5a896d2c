"""The guides' examples as printed: the alert-rule YAML (docs/alerting.md) is a valid alert file,
the bound-metadata block (docs/api.md) gives what its comments say."""

from __future__ import annotations

import re
from pathlib import Path

from tracectx.alerting import load_config

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
