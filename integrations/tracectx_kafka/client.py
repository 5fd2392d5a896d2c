"""Who a client is, for span attributes: ``server.address``/``server.port`` (its first
bootstrap server), ``messaging.client.id`` and, for consumers, the group.

Read once per client instance (the adapters keep the result), never per message.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["client_attributes", "config_attributes", "server_of"]


def server_of(bootstrap: Any) -> tuple[str, int | None] | None:
    """Host and port of the first entry of a bootstrap server setting (``"h:p,h2:p2"``, a list
    of those, or ``[ "[::1]:9092" ]``); None if there is none."""
    if isinstance(bootstrap, list | tuple):
        bootstrap = bootstrap[0] if bootstrap else None
    if not isinstance(bootstrap, str):
        return None
    first = bootstrap.split(",", 1)[0].strip()
    if "://" in first:  # e.g. PLAINTEXT://host:port
        first = first.split("://", 1)[1]
    if not first:
        return None
    host, sep, port = first.rpartition(":")
    if not sep or "]" in port:  # no port, or a bare IPv6 address
        return first.strip("[]"), None
    host = host.strip("[]")
    return (host, int(port)) if port.isdigit() else (host, None)


def client_attributes(bootstrap: Any, client_id: Any = None, group: Any = None) -> dict[str, Any]:
    """The per-client span attributes (only those that are known)."""
    attrs: dict[str, Any] = {}
    server = server_of(bootstrap)
    if server is not None:
        attrs["server.address"] = server[0]
        if server[1] is not None:
            attrs["server.port"] = server[1]
    if isinstance(client_id, str) and client_id:
        attrs["messaging.client.id"] = client_id
    if isinstance(group, str) and group:
        attrs["messaging.consumer.group.name"] = group
    return attrs


def config_attributes(config: Mapping[str, Any], *, consumer: bool) -> dict[str, Any]:
    """`client_attributes` from a kafka-python (``bootstrap_servers``) or librdkafka
    (``bootstrap.servers``) configuration mapping."""
    get = config.get
    return client_attributes(
        get("bootstrap_servers", get("bootstrap.servers")),
        get("client_id", get("client.id")),
        get("group_id", get("group.id")) if consumer else None,
    )
