"""The note on a search the server did not filter names the parameter that server was sent."""

from __future__ import annotations

from typing import Any

from tests.viz.jaeger_gateway import JaegerStandIn
from tests.viz.test_jaeger_api import store
from tracectx.viz.sources.jaeger_api import TraceSearch, fetch_service


class _V1IgnoringTags(JaegerStandIn):
    """A server with only the v1 API that ignores ``tags`` (as a proxy dropping it would)."""

    def _find_v1(self, handler: Any, q: dict[str, str]) -> None:
        super()._find_v1(handler, {k: v for k, v in q.items() if k != "tags"})


def test_a_v1_server_that_ignored_tags_is_named_as_such():
    server = _V1IgnoringTags("v1only", store())
    try:
        found = fetch_service(server.url, TraceSearch("checkout", attributes={"error": "true"}))
    finally:
        server.close()
    assert sorted(int(s.trace_id, 16) for s in found.spans) == [1, 1, 3, 3, 5, 5]
    [note] = found.problems
    assert "ignored the tags parameter" in note and "query.attributes" not in note


def test_an_old_api_v3_server_is_still_said_to_need_v2_19():
    server = JaegerStandIn("v2.5", store())
    try:
        found = fetch_service(server.url, TraceSearch("checkout", attributes={"error": "true"}))
    finally:
        server.close()
    assert "query.attributes needs Jaeger v2.19+" in found.problems[0]
