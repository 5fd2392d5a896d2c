"""Errors with a kind, a code, metadata and an identity that travels with them.

Exception tree::

    Exception
    └── TracedError            kind, code, message, metadata, error_id, origin, cause_id
        └── RemoteError        rebuilt from an envelope; `remote_type` names the original class

Any exception, traced or not, gets a stable error id on first use (`error_id`), so a plain
``ValueError`` raised in a worker thread keeps one identity on every span it crosses.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any

from tracectx.context import get_bound
from tracectx.kinds import ErrorKind
from tracectx.redaction import redact

__all__ = [
    "ErrorOrigin",
    "RemoteError",
    "TracedError",
    "cause_of",
    "error_id",
    "get_origin",
    "group_leaves",
    "new_error",
    "new_error_id",
    "primary_member",
    "set_origin",
    "type_name",
]

_ID_ATTR = "_tracectx_error_id"
_ORIGIN_ATTR = "_tracectx_origin"


def new_error_id() -> str:
    """A fresh error id: 16 random hex digits."""
    # what secrets.token_hex(8) does, without importing secrets (hmac, hashlib: ~8 % of
    # `import tracectx`)
    return os.urandom(8).hex()


@dataclasses.dataclass(frozen=True, slots=True)
class ErrorOrigin:
    """Where an error was first recorded: the span it was born on."""

    trace_id: str
    span_id: str
    service: str | None = None


class TracedError(Exception):
    """An error that knows its kind, code and metadata, and keeps one id for life.

    Metadata bound in the current context (`tracectx.bind`) is merged in at construction;
    explicit metadata wins over bound values.
    """

    def __init__(
        self,
        message: str,
        *,
        kind: ErrorKind = ErrorKind.UNKNOWN,
        code: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        error_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.code = code or kind.name.lower()
        merged: dict[str, Any] = dict(get_bound())
        merged.update(metadata or {})
        self.metadata = merged
        setattr(self, _ID_ATTR, error_id or new_error_id())

    @property
    def error_id(self) -> str:
        return str(getattr(self, _ID_ATTR))

    @property
    def origin(self) -> ErrorOrigin | None:
        return get_origin(self)

    @property
    def cause_id(self) -> str | None:
        """The id of the error this one was raised from (``raise ... from old``)."""
        cause = cause_of(self)
        return error_id(cause) if cause is not None else None

    def with_metadata(self, **metadata: Any) -> TracedError:
        """Add metadata in place and return self, for ``raise err.with_metadata(...)``."""
        self.metadata.update(metadata)
        return self

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.message!r}, kind={self.kind.name}, code={self.code!r}, "
            f"error_id={self.error_id!r})"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        # Keep kind, code, metadata and identity across pickle (process pools, Celery pickle);
        # pickling is leaving the process, so the metadata goes redacted, like an envelope's.
        metadata = redact(self.metadata)
        state = {**self.__dict__, "metadata": metadata}
        return (
            _rebuild,
            (type(self), self.message, self.kind.name, self.code, metadata, self.error_id),
            state,
        )


class RemoteError(TracedError):
    """An error rebuilt on the far side of a hop when its original class is not importable."""

    def __init__(self, message: str, *, remote_type: str = "", **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.remote_type = remote_type


def _rebuild(
    cls: type[TracedError],
    message: str,
    kind_name: str,
    code: str,
    metadata: dict[str, Any],
    eid: str,
) -> TracedError:
    from tracectx.kinds import KindError, get_kind

    try:
        kind = get_kind(kind_name)
    except KindError:
        kind = ErrorKind.UNKNOWN
    err = cls.__new__(cls)
    TracedError.__init__(err, message, kind=kind, code=code, error_id=eid)
    err.metadata = dict(metadata)
    return err


def new_error(
    kind: ErrorKind, message: str, *, code: str | None = None, **metadata: Any
) -> TracedError:
    """Build a `TracedError`: ``raise new_error(ErrorKind.BUSINESS, "no funds", code="E42")``."""
    return TracedError(message, kind=kind, code=code, metadata=metadata)


_MAX_GROUP_DEPTH = 32


def primary_member(exc: BaseException) -> BaseException | None:
    """For an exception group, its first leaf member (groups nest); None for anything else.

    A group is how one failure leaves a ``TaskGroup`` or ``except*``: it takes its first leaf's
    identity (id and origin), so the span the group leaves *propagates* that error instead of
    giving birth to a new, unrelated one.
    """
    node: BaseException = exc
    for _ in range(_MAX_GROUP_DEPTH):
        if not isinstance(node, BaseExceptionGroup) or not node.exceptions:
            break
        node = node.exceptions[0]
    return None if node is exc or isinstance(node, BaseExceptionGroup) else node


def group_leaves(exc: BaseExceptionGroup[BaseException], limit: int = 64) -> list[BaseException]:
    """The leaf members of a group, depth-first, at most `limit`."""
    out: list[BaseException] = []
    stack: list[tuple[BaseException, int]] = [(exc, 0)]
    while stack and len(out) < limit:
        node, depth = stack.pop()
        if isinstance(node, BaseExceptionGroup):
            if depth < _MAX_GROUP_DEPTH:
                stack.extend((m, depth + 1) for m in reversed(node.exceptions))
        else:
            out.append(node)
    return out


def error_id(exc: BaseException) -> str:
    """The error id of any exception, assigned on first call and kept on the object (a group
    takes its first member's id: see `primary_member`)."""
    found = getattr(exc, _ID_ATTR, None)
    if isinstance(found, str):
        return found
    member = primary_member(exc)
    eid = error_id(member) if member is not None else new_error_id()
    try:
        setattr(exc, _ID_ATTR, eid)
    except (AttributeError, TypeError):  # exceptions with __slots__ and no __dict__
        pass
    return eid


def type_name(exc: BaseException) -> str:
    """The reported class of an error: ``module.Qualname`` (bare for builtins), or the
    original class of an error rebuilt from an envelope."""
    remote = getattr(exc, "remote_type", "")
    if isinstance(remote, str) and remote:
        return remote
    cls = type(exc)
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


def get_origin(exc: BaseException) -> ErrorOrigin | None:
    """The span an exception was first recorded on, if any (for a group: its first member's)."""
    found = getattr(exc, _ORIGIN_ATTR, None)
    if isinstance(found, ErrorOrigin):
        return found
    member = primary_member(exc)
    return get_origin(member) if member is not None else None


def set_origin(exc: BaseException, origin: ErrorOrigin) -> None:
    """Remember where an exception was born; the first call wins."""
    if get_origin(exc) is None:
        try:
            setattr(exc, _ORIGIN_ATTR, origin)
        except (AttributeError, TypeError):
            pass


def cause_of(exc: BaseException) -> BaseException | None:
    """The explicit cause (``raise new from old``), else None; implicit context is not a cause."""
    return exc.__cause__
