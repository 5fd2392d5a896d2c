"""Request headers of an ASGI scope as one ``{lower-case name: value}`` dict.

Names and values are decoded as latin-1 (every byte maps to one character, so decoding never
fails); a repeated header is joined with ``,`` as RFC 9110 allows, which makes a duplicated
``traceparent`` invalid (a fresh root, as W3C Trace Context asks). Pairs a non-conforming server
hands over as anything but two byte strings are skipped rather than failing the request.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["request_headers"]

_BYTES = (bytes, bytearray)


def request_headers(scope: Mapping[str, Any]) -> dict[str, str]:
    """The scope's ``headers`` joined by name; never raises (a ``headers`` entry that is not a
    list or tuple of pairs, as ASGI specifies, reads as no headers)."""
    raw = scope.get("headers")
    if not isinstance(raw, list | tuple):
        return {}
    out: dict[str, str] = {}
    for pair in raw:
        if not isinstance(pair, tuple | list) or len(pair) != 2:
            continue
        raw_key, raw_value = pair
        if not (isinstance(raw_key, _BYTES) and isinstance(raw_value, _BYTES)):
            continue
        key = bytes(raw_key).decode("latin-1").lower()
        value = bytes(raw_value).decode("latin-1")
        out[key] = f"{out[key]},{value}" if key in out else value
    return out
