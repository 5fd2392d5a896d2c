"""tracectx's version, in one place that imports nothing (read by the tracer and the package)."""

__all__ = ["__version__"]

__version__ = "0.1.0"
