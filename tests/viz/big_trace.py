"""One big trace shaped like a busy production request, for the HTML page's size and load tests
and ``bench/bench_html.py``: `n` spans under one root, each parent among the last eight spans (or
its ancestor, to stay within 14 levels), each child within its parent, HTTP client/server
attributes with a unique URL each, and about 4 % of the spans failing: an ``exception`` event
with a stack at the failing span, ERROR status on one to four of its ancestors. At 100k spans
that is about 3,900 error paths (3,925 with the defaults: 3,919 unobserved, 6 absorbed). The
page's size and speed depend on the paths' number, not their outcomes."""

from __future__ import annotations

import random

from tracectx.viz.model import Span, SpanEvent

__all__ = ["big_trace"]

SERVICES = ["frontend", "checkout", "payments", "inventory", "shipping", "orders"]
MAX_DEPTH = 14
STACK = (
    'Traceback (most recent call last):\n  File "app.py", line 42, in call\n'
    "    return session.get(url)\nConnectionError: refused"
)


def big_trace(n: int = 100_000, seed: int = 7, failing: float = 0.039) -> list[Span]:
    """`n` spans of one trace (see the module docstring), parents before children."""
    rng = random.Random(seed)
    trace_id = f"{rng.getrandbits(128):032x}"
    ids = [f"{k + 1:016x}" for k in range(n)]
    starts: list[int] = []
    ends: list[int] = []
    parents: list[int] = []
    depths: list[int] = []
    spans: list[Span] = []
    for k in range(n):
        parent = -1 if k == 0 else rng.randrange(max(k - 8, 0), k)
        while parent >= 0 and depths[parent] >= MAX_DEPTH:
            parent = parents[parent]
        p_start = 0 if parent < 0 else starts[parent]
        p_end = 30_000_000_000 if parent < 0 else ends[parent]
        room = max(p_end - p_start, 2_000)
        s = p_start + int(room * rng.uniform(0.0, 0.6))
        e = min(s + max(int((p_end - s) * rng.uniform(0.2, 0.8)), 1_000), max(p_end, s + 1_000))
        service = SERVICES[0] if parent < 0 else rng.choice(SERVICES)
        method = rng.choice(["GET", "POST", "PUT"])
        spans.append(
            Span(
                trace_id,
                ids[k],
                None if parent < 0 else ids[parent],
                f"{method} /api/{service}/{{id}}",
                service,
                s,
                e,
                kind="server" if k % 2 == 0 else "client",
                attributes={
                    "http.request.method": method,
                    "url.full": f"https://shop.example.com/api/{service}/{rng.randrange(100_000)}",
                    "http.response.status_code": 200,
                    "server.address": f"{service}:8080",
                },
            )
        )
        starts.append(s)
        ends.append(e)
        parents.append(parent)
        depths.append(0 if parent < 0 else depths[parent] + 1)
    for k in range(1, n):
        if rng.random() >= failing:
            continue
        span = spans[k]
        span.events = [
            SpanEvent(
                "exception",
                {
                    "exception.type": "ConnectionError",
                    "exception.message": f"upstream {span.service} refused the connection",
                    "exception.stacktrace": STACK,
                },
                time_ns=span.end_ns,
            )
        ]
        node = k
        for _ in range(rng.randrange(1, 5)):  # the error climbs a few ancestors
            spans[node].error = True
            spans[node].status_message = "ConnectionError: refused"
            spans[node].attributes["http.response.status_code"] = 503
            node = parents[node]
            if node <= 0:
                break
    return spans
