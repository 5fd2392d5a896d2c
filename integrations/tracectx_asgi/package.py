"""The library versions this integration instruments (read by `BaseInstrumentor`)."""

_instruments = ("starlette >= 0.37",)
