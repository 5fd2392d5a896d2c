"""`CheckedInstrumentor`: an OTel `BaseInstrumentor` that refuses unknown options on every
``instrument()`` call.

`BaseInstrumentor.instrument()` returns early when already instrumented, before
``_instrument`` could look at the options, so a misspelt option given then was ignored
silently. Here the check runs first, every time, and names the valid options.
"""

from __future__ import annotations

from typing import Any, ClassVar

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]

__all__ = ["BASE_OPTIONS", "CheckedInstrumentor", "check_options"]

#: What `BaseInstrumentor.instrument` itself takes (opentelemetry-instrument passes the first).
BASE_OPTIONS = frozenset({"skip_dep_check", "raise_exception_on_conflict"})


def check_options(name: str, given: Any, valid: frozenset[str]) -> None:
    """Raise `TypeError` naming the unknown options in `given` (names) and the valid ones."""
    unknown = sorted(set(given) - valid - BASE_OPTIONS)
    if unknown:
        raise TypeError(
            f"{name}.instrument() got unexpected option(s) {unknown}; "
            f"valid options: {sorted(valid)}"
        )


class CheckedInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """A `BaseInstrumentor` with the options it takes in `OPTIONS`, checked on each call."""

    OPTIONS: ClassVar[frozenset[str]] = frozenset()

    def instrument(self, **kwargs: Any) -> Any:
        check_options(type(self).__name__, kwargs, self.OPTIONS)
        return super().instrument(**kwargs)
