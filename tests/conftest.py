"""Shared fixtures: a clean registry and config per test, and real SDK span capture."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry import context as otel_context
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tracectx.classify import reset_classifiers
from tracectx.config import reset_defaults
from tracectx.kinds import reset_kinds
from tracectx.testing import capture_spans, install_test_provider

install_test_provider()


@pytest.fixture(autouse=True)
def _clean_state() -> Iterator[None]:
    """Every test starts with default kinds, classifiers, settings and an empty context."""
    reset_kinds()
    reset_classifiers()
    reset_defaults()
    token = otel_context.attach(otel_context.Context())
    yield
    otel_context.detach(token)
    reset_kinds()
    reset_classifiers()
    reset_defaults()


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Finished spans of the test, from the real OTel SDK."""
    with capture_spans() as exporter:
        yield exporter
