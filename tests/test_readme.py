"""The README's alert-rule YAML is a valid alert file (docs that cannot drift silently)."""

from __future__ import annotations

import re
from pathlib import Path

from tracectx.alerting import load_config

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_alert_yaml_loads():
    blocks = re.findall(r"```yaml\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "the README shows an alert file"
    for block in blocks:
        config = load_config(block)
        assert {r.name for r in config.rules} == {"payment-business-burst", "high-risk-error-burst"}
        assert config.redis and config.jaeger
