"""Identifiers for graph languages: span and trace ids made safe, unique and stable.

Readers give lowercase hex ids, but `analyse` accepts spans built by hand; an id that is not
plain ``[0-9A-Za-z_]`` is replaced by a digest of itself, so it can never break the syntax and
the same id always gets the same name.
"""

from __future__ import annotations

import hashlib
import re

__all__ = ["graph_id"]

_PLAIN = re.compile(r"[0-9A-Za-z_]{1,64}")


def graph_id(*parts: str) -> str:
    """One identifier for `parts` (e.g. trace id and span id): joined by ``_`` when each part
    is plain, else ``x`` and a digest of them all."""
    if all(_PLAIN.fullmatch(p) for p in parts):
        return "_".join(parts)
    joined = "\0".join(parts).encode("utf-8", "surrogatepass")
    return "x" + hashlib.blake2b(joined, digest_size=12).hexdigest()
