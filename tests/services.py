"""Real services for the tests (see `tracectx.embedded`): free loopback ports, stopped after."""

from tracectx.embedded import Service, free_port, redis_server, tansu_broker, wait_for_port

__all__ = ["Service", "free_port", "redis_server", "tansu_broker", "wait_for_port"]
