"""The producer's cached propagation headers follow a propagator replaced after the first send."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import propagate
from opentelemetry.propagators.textmap import TextMapPropagator

from tracectx_kafka.producer import propagation_headers


class Fixed(TextMapPropagator):
    """Writes one constant header, whatever the context."""

    def inject(self, carrier: Any, context: Any = None, setter: Any = None) -> None:
        carrier["x-test"] = "1"

    def extract(self, carrier: Any, context: Any = None, getter: Any = None) -> Any:
        return context

    @property
    def fields(self) -> set[str]:
        return {"x-test"}


@pytest.fixture
def restore_textmap() -> Iterator[None]:
    before = propagate.get_global_textmap()
    yield
    propagate.set_global_textmap(before)


def test_a_propagator_set_after_the_first_send_is_used(restore_textmap: None) -> None:
    assert propagation_headers(None) == []  # no span, no baggage: nothing to write
    propagate.set_global_textmap(Fixed())  # same (empty) current context as before
    assert propagation_headers(None) == [("x-test", b"1")]
