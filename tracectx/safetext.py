"""Text from outside made safe to print: control characters shown as escapes, never obeyed.

Span names, service names, exception messages and request paths come from callers and from
span files. Written raw to a terminal or a log they can set the window title (OSC 0), clear the
screen, move the cursor, recolour text, reorder what follows (U+202E) or start a forged log line
(``\\n``). `escape_control` shows each such character as a Python-style escape (``\\x1b``,
``\\n``, ``\\u202e``) so the text stays readable and inert. Hand-written because the rule is one
line and the set is ours to decide: C0, DEL, C1, and the Unicode bidi controls.
"""

from __future__ import annotations

import re

__all__ = ["escape_control", "has_control"]

# C0 (incl. \t \n \r), DEL, C1; bidi embeddings/overrides/isolates; line/paragraph separators.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def escape_control(text: str, limit: int | None = None) -> str:
    """`text` with every control character escaped; cut to `limit` characters *before*
    escaping (so a cut never splits an escape), with ``…`` marking the cut."""
    if limit is not None and len(text) > limit:
        text = text[: max(limit - 1, 0)] + "…"
    return _CONTROL.sub(_escape, text)


def has_control(text: str) -> bool:
    """True if `text` holds a character `escape_control` would escape."""
    return _CONTROL.search(text) is not None
