"""A request's reads bounded in time and bytes, for the small stdlib HTTP servers we ship.

A socket timeout alone restarts on every byte, so a client that trickles its request one byte
at a time would hold a server thread for ever; `Deadline` gives each read only what is left of
the request's time and bytes. Shared by ``tracectx serve`` and the stream's HTTP endpoint.
"""

from __future__ import annotations

import io
import socket
import time
from typing import Any

__all__ = ["Deadline", "RequestTooLarge"]


class RequestTooLarge(Exception):
    """The request went past the bytes its `Deadline` allows."""


class Deadline(io.RawIOBase):
    """The connection's reads, each given only what is left of the request's `seconds` and
    `max_bytes`: `TimeoutError` when the time is up, `RequestTooLarge` past the bytes. Wrap
    it in ``io.BufferedReader`` as a handler's ``rfile``."""

    def __init__(self, sock: socket.socket, seconds: float, max_bytes: int) -> None:
        self.sock, self.ends, self.left = sock, time.monotonic() + seconds, max_bytes

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        remaining = self.ends - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("request not received in time")
        if self.left <= 0:
            raise RequestTooLarge
        self.sock.settimeout(remaining)
        view = memoryview(buffer)[: self.left]
        got = self.sock.recv_into(view)
        self.left -= got
        return got
