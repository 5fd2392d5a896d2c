"""Mask sensitive metadata: the one redaction every output uses.

Spans, exception events, error envelopes (Celery results, Kafka DLQ headers), structlog and
stdlib log fields, alert payloads and every ``tracectx graph`` format go through `redact`.

A key is sensitive when one of its *words* is a marker (``settings().redact_keys``): keys are
split on ``_ - . :``, spaces and camelCase, and two or three adjacent words are also tried run
together (``api_key`` → ``apikey``, ``private-key`` → ``privatekey``). Markers of five letters
or more also count anywhere in the key run together in lower case (``secretkey``,
``passwordhash``, ``privatekeypem``, ``apikeyid``, ``dbpassword``), except inside the words of
`BENIGN` (``tokenizer``, ``input_tokens`` — a count, unlike ``access_tokens`` —,
``secretary``, ``token_bucket``, ``passwordless``, ``sessions``). Shorter markers (``pin``,
``ssn``, ``pwd``, ``card``, ``auth``) count only as words, so ``business_name``, ``spinner`` or
``author`` are not masked.

A value is masked whatever its key when it looks like a credential (`looks_secret`: a JWT, an
``Authorization`` value, a URL with a password, the shapes of AWS, Stripe, GitHub, GitLab,
Slack, Google and OpenAI keys, a PEM private key). Redaction runs on every error recorded, so
values are first screened for a few literal hints in C (`str.__contains__`); the patterns run
only on the few that have one. Hand-written: the rules are short and must be ours to state.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any

from tracectx.config import settings

__all__ = ["BENIGN", "is_sensitive", "key_words", "looks_secret", "redact", "redact_value"]

MAX_DEPTH = 16
_SPLIT = re.compile(r"[^A-Za-z0-9]+")
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")
# Markers that also count anywhere in a run-together lower-case key: ``dbpassword``,
# ``secretkey``, ``apikeyid``. Short markers (``pin``, ``pwd``) only count as words.
_INSIDE_MIN = 5
# Words before ``tokens`` that make it a count (``input_tokens``, ``max_tokens``); other
# ``…_tokens`` (``access_tokens``, ``api_tokens``) are credentials.
_COUNTS = (
    "input", "output", "total", "prompt", "completion", "max", "min", "cached", "reasoning",
    "num", "limit", "remaining", "used", "generated",
)  # fmt: skip
#: Words that contain a marker but hold no secret: a marker found inside a run-together key,
#: or a marker word that with its neighbours spells one (``token_bucket``), only counts outside
#: them (``oauthtokensecret`` still has ``secret``).
BENIGN = (
    "tokenizer", "tokenizers", "tokenize", "tokenized", "tokenization",
    *(f"{count}tokens" for count in _COUNTS), "tokenbucket", "tokenbuckets",
    "secretary", "secretaries", "secretariat", "sessions", "passwordless",
)  # fmt: skip
_BENIGN_WORDS = frozenset(BENIGN)
# A credential's value, by shape: each pattern with the literals one of which it contains.
# A value shorter than `_MIN_SECRET` or without any literal is not searched at all; each
# pattern starts only where a run of its characters starts (a lookbehind, or a bounded
# prefix), so a hostile value costs time linear in its length.
_MIN_SECRET = 12
_AUTH = re.compile(  # an Authorization value: the whole text, or "Bearer" + a token in a text
    r"^\s*(?i:basic|bearer|token)\s+(?=\S*[0-9+/=_.-])\S{8,}\s*$"
    r"|(?i:\bbearer\s+)(?=[\w.~+/=-]*[0-9])[\w.~+/=-]{16,}"
)
_STRIPE = re.compile(r"\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{10,}|\bwhsec_[A-Za-z0-9]{10,}")
_GITHUB = re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}|\bgithub_pat_[A-Za-z0-9_]{22,}")
_SHAPES: tuple[tuple[tuple[str, ...], re.Pattern[str]], ...] = (
    (("eyJ",), re.compile(r"(?<![\w-])eyJ[\w-]{4,}\.eyJ[\w-]{4,}\.")),  # a JWT
    (("earer", "EARER", "asic", "ASIC", "oken", "OKEN"), _AUTH),
    (("_live_", "_test_", "whsec_"), _STRIPE),
    (("AKIA", "ASIA"), re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b")),  # an AWS access key id
    (("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"), _GITHUB),
    (("glpat-",), re.compile(r"(?<![\w-])glpat-[\w-]{20,}")),  # GitLab
    (("xox",), re.compile(r"(?<![\w-])xox[abposr]-[A-Za-z0-9-]{10,}")),  # Slack
    (("AIza",), re.compile(r"\bAIza[0-9A-Za-z_-]{35}")),  # a Google API key
    (("sk-",), re.compile(r"(?<![\w-])sk-(?:proj-|ant-)?[\w-]{20,}")),  # OpenAI, Anthropic
    (("PRIVATE KEY",), re.compile(r"-----BEGIN (?:[A-Z]+ )*PRIVATE KEY-----")),
)
_HINTS = tuple(hint for hints, _ in _SHAPES for hint in hints)
_USERINFO = re.compile(r"[^/\s:@]*:[^/\s@]+@")  # after "://": user:password@


def key_words(key: str) -> list[str]:
    """`key` in lower-case words: ``X-Auth-Token`` → x, auth, token; ``cardNumber`` → card,
    number."""
    words: list[str] = []
    for part in _SPLIT.split(key):
        words.extend(w.lower() for w in _CAMEL.findall(part))
    return words


@functools.lru_cache(maxsize=64)
def _inside(markers: tuple[str, ...]) -> re.Pattern[str] | None:
    """One pattern finding any long marker inside a run-together key."""
    long = sorted(
        {m for m in (_SPLIT.sub("", m).lower() for m in markers) if len(m) >= _INSIDE_MIN}
    )
    return re.compile(f"(?=({'|'.join(long)}))") if long else None  # overlapping matches


_BENIGN = re.compile(f"(?=({'|'.join(BENIGN)}))")


def _marked_inside(whole: str, inside: re.Pattern[str]) -> bool:
    """A long marker in `whole` that is not part of a `BENIGN` word there."""
    benign = [(m.start(), m.start() + len(m[1])) for m in _BENIGN.finditer(whole)]
    for found in inside.finditer(whole):
        start, end = found.start(), found.start() + len(found[1])
        if not any(a <= start and end <= b for a, b in benign):
            return True
    return False


@functools.lru_cache(maxsize=4096)
def _sensitive(key: str, markers: tuple[str, ...]) -> bool:
    marks = {_SPLIT.sub("", m).lower() for m in markers}
    words = key_words(key)
    runs = [(i, j) for i in range(len(words)) for j in range(i + 1, min(i + 3, len(words)) + 1)]
    benign = [(i, j) for i, j in runs if "".join(words[i:j]) in _BENIGN_WORDS]
    for i, j in runs:
        if "".join(words[i:j]) in marks and not any(a <= i and j <= b for a, b in benign):
            return True
    inside = _inside(markers)
    return inside is not None and _marked_inside("".join(words), inside)


def looks_secret(value: str) -> bool:
    """True if `value` has the shape of a credential: a JWT, ``Bearer …``/``Basic …``, a URL
    with a password, an AWS/Stripe/GitHub/GitLab/Slack/Google/OpenAI key, a PEM private key."""
    if len(value) < _MIN_SECRET:
        return False
    at = value.find("://")
    while at >= 0:  # a URL with user:password@
        if "@" in value and _USERINFO.match(value, at + 3):
            return True
        at = value.find("://", at + 3)
    if not any(map(value.__contains__, _HINTS)):  # most values: the scan stays in C
        return False
    return any(
        pattern.search(value) is not None
        for hints, pattern in _SHAPES
        if any(map(value.__contains__, hints))
    )


def is_sensitive(key: str) -> bool:
    """True if `key` looks like it holds a secret (``password``, ``X-Auth-Token``, ``cvv`` …)."""
    return _sensitive(str(key)[:256], settings().redact_keys)


def _text(value: str, mask: str) -> str:
    return mask if len(value) >= _MIN_SECRET and looks_secret(value) else value


def redact_value(value: Any, _depth: int = 0) -> Any:
    """`value` with every sensitive key inside it masked, and every text that `looks_secret`:
    mappings, lists and tuples are walked (to `MAX_DEPTH`; deeper parts are replaced by the
    mask, since they cannot be checked)."""
    if type(value) is str:  # the common case, before the ABC checks
        return _text(value, settings().redact_mask)
    if isinstance(value, Mapping):
        return redact(value, _depth)
    if isinstance(value, str):
        return _text(value, settings().redact_mask)
    if isinstance(value, list | tuple):
        if _depth >= MAX_DEPTH:
            return settings().redact_mask
        return [redact_value(v, _depth + 1) for v in value]
    return value


def redact(metadata: Mapping[str, Any], _depth: int = 0) -> dict[str, Any]:
    """A copy of `metadata` with the values of sensitive keys, and texts that look like
    credentials, masked; nested structures included."""
    cfg = settings()  # once per mapping: this runs on every error recorded
    mask, markers = cfg.redact_mask, cfg.redact_keys
    if _depth >= MAX_DEPTH:
        return {"…": mask}
    out: dict[str, Any] = {}
    for key, value in metadata.items():
        if _sensitive(key[:256] if type(key) is str else str(key)[:256], markers):
            out[key] = mask
        elif type(value) is str:
            out[key] = mask if len(value) >= _MIN_SECRET and looks_secret(value) else value
        else:
            out[key] = redact_value(value, _depth + 1)
    return out
