"""Mask sensitive metadata: the one redaction every output uses.

Spans, exception events, error envelopes (Celery results, Kafka DLQ headers), structlog and
stdlib log fields, alert payloads and every ``tracectx graph`` format go through `redact`.

A key is sensitive when one of its *words* is a marker (``settings().redact_keys``): keys are
split on ``_ - . :``, spaces and camelCase, and two or three adjacent words are also tried run
together (``api_key`` → ``apikey``, ``private-key`` → ``privatekey``), as is the whole key in
lower case (``accesstoken`` ends in the marker ``token``). Words, not substrings, so
``business_name`` is not an ``ssn``. Hand-written: the rule is short and must be ours to state.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any

from tracectx.config import settings

__all__ = ["is_sensitive", "key_words", "redact", "redact_value"]

MAX_DEPTH = 16
_SPLIT = re.compile(r"[^A-Za-z0-9]+")
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")
# Markers that also count at the end of a run-together lower-case key: ``dbpassword``,
# ``accesstoken``, ``clientsecret``. Short markers (``pin``, ``pwd``) only count as words.
_SUFFIX_MIN = 5


def key_words(key: str) -> list[str]:
    """`key` in lower-case words: ``X-Auth-Token`` → x, auth, token; ``cardNumber`` → card,
    number."""
    words: list[str] = []
    for part in _SPLIT.split(key):
        words.extend(w.lower() for w in _CAMEL.findall(part))
    return words


@functools.lru_cache(maxsize=4096)
def _sensitive(key: str, markers: tuple[str, ...]) -> bool:
    marks = {_SPLIT.sub("", m).lower() for m in markers}
    words = key_words(key)
    for i in range(len(words)):
        for j in range(i + 1, min(i + 3, len(words)) + 1):
            if "".join(words[i:j]) in marks:
                return True
    whole = "".join(words)
    return any(len(m) >= _SUFFIX_MIN and whole.endswith(m) for m in marks)


def is_sensitive(key: str) -> bool:
    """True if `key` looks like it holds a secret (``password``, ``X-Auth-Token``, ``cvv`` …)."""
    return _sensitive(str(key)[:256], settings().redact_keys)


def redact_value(value: Any, _depth: int = 0) -> Any:
    """`value` with every sensitive key inside it masked: mappings, lists and tuples are walked
    (to `MAX_DEPTH`; deeper parts are replaced by the mask, since they cannot be checked)."""
    if isinstance(value, Mapping):
        return redact(value, _depth)
    if isinstance(value, list | tuple):
        if _depth >= MAX_DEPTH:
            return settings().redact_mask
        return [redact_value(v, _depth + 1) for v in value]
    return value


def redact(metadata: Mapping[str, Any], _depth: int = 0) -> dict[str, Any]:
    """A copy of `metadata` with sensitive values masked, nested structures included."""
    mask = settings().redact_mask
    if _depth >= MAX_DEPTH:
        return {"…": mask}
    out: dict[str, Any] = {}
    for key, value in metadata.items():
        out[key] = mask if is_sensitive(str(key)) else redact_value(value, _depth + 1)
    return out
