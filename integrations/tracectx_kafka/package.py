"""The library versions this integration instruments (read by `BaseInstrumentor`)."""

_instruments = ("kafka-python >= 3.0",)
