"""The library versions this integration instruments (read by `BaseInstrumentor`)."""

_instruments = ("celery >= 5.3",)
