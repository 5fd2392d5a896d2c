"""Concurrent traffic where known hops drop the trace context, with ground truth, for
measuring `tracectx.viz.propagation_check`.

Requests arrive at the gateway at `rate` per second (Poisson) and each one makes every hop
kind once, so every service sees about `rate` requests per second and calls overlap in time:

- ``http``: gateway → orders (``POST /orders/{id}``), orders → payments
  (``POST /payments/charge/{id}``), gateway → inventory (``GET /inventory/{sku}``); dropped
  like httpx without propagation: the server span is a root of a new trace;
- ``celery``: orders → notify (``notify.email``); dropped like Celery without the signals;
- ``kafka``: orders → shipping (topic ``orders``, keyed by the order most of the time);
  dropped like a producer without headers;
- ``thread``: orders hands the price calculation to a raw ``ThreadPoolExecutor``;
- ``task``: payments (asyncio) signs in ``loop.run_in_executor`` without the hooks.

Each hop drops its context with probability `drop` (0: every trace whole). Noise the check
must not mistake for a lost hop: database calls, HTTP calls refused before any server saw
them, scheduler roots on their own threads, periodic asyncio tasks, messages from producers
that are not instrumented, messages whose consumers are not, and payment failures absorbed by
orders (the error paths a join must make whole). Spans are made on the real OpenTelemetry SDK
with a simulated clock, so the same seed gives the same run.
"""

from __future__ import annotations

import dataclasses
import random
import uuid
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

from tracectx.viz.model import Span
from tracectx.viz.sources.memory import from_readable_spans

__all__ = ["BrokenRun", "TrueHop", "generate_broken", "score"]

MS = 1_000_000
HOPS = ("http", "celery", "kafka", "thread", "task")
_SERVICES = ("gateway", "orders", "payments", "inventory", "shipping", "notify")
Key = tuple[str, str]


@dataclasses.dataclass(slots=True)
class TrueHop:
    """One hop as it happened: its kind, the calling span, the callee's first span, and
    whether the context was dropped (the callee then is a root of a new trace)."""

    hop: str
    caller: Key
    callee: Key
    dropped: bool


@dataclasses.dataclass(slots=True)
class BrokenRun:
    spans: list[Span]
    hops: list[TrueHop]
    absorbed_across: list[tuple[Key, Key]]  # (origin, absorber) of payment errors over a hop


def _key(span: Any) -> Key:
    ctx = span.get_span_context()
    return format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")


class _Run:
    def __init__(
        self, rng: random.Random, drop: float, tracers: dict[str, trace.Tracer], sparse: bool
    ) -> None:
        self.sparse = sparse
        self.rng = rng
        self.drop = drop
        self.tracers = tracers
        self.hops: list[TrueHop] = []
        self.absorbed: list[tuple[Key, Key]] = []
        self.order = 1000
        self.tasks = 100
        self.last_http = TrueHop("http", ("", ""), ("", ""), False)

    def span(
        self,
        service: str,
        name: str,
        kind: SpanKind,
        parent: Any,
        start: int,
        thread: str,
        task: str | None = None,
        **attrs: Any,
    ) -> Any:
        ctx = trace.set_span_in_context(parent) if parent is not None else None
        attributes = {"thread.name": thread, **attrs}
        if task is not None:
            attributes["tracectx.task.name"] = task
        return self.tracers[service].start_span(
            name, context=ctx, kind=kind, start_time=start, attributes=attributes
        )

    def ms(self, lo: float, hi: float) -> int:
        return int(self.rng.uniform(lo, hi) * MS)

    def dropped(self) -> bool:
        return self.rng.random() < self.drop

    def db(self, service: str, parent: Any, t: int, thread: str, task: str | None = None) -> int:
        name = f"SELECT {self.rng.choice(['orders', 'stock', 'users'])}"
        s = self.span(
            service, name, SpanKind.CLIENT, parent, t, thread, task, **{"db.system": "postgresql"}
        )
        t += self.ms(0.3, 4)
        s.end(end_time=t)
        return t

    # -- hops --------------------------------------------------------------------------------
    def http(
        self,
        caller_service: str,
        parent: Any,
        t: int,
        thread: str,
        task: str | None,
        target: str,
        method: str,
        route: str,
        path: str,
        serve: Any,
        on: tuple[str, str | None],
    ) -> tuple[int, int]:
        """An HTTP call; `serve(server_span, t)` runs the server on thread and task `on`, and
        returns (end, status)."""
        port = 8080
        client = self.span(
            caller_service,
            method,
            SpanKind.CLIENT,
            parent,
            t,
            thread,
            task,
            **{
                "http.request.method": method,
                "url.full": f"http://{target}:{port}{path}",
                "server.address": target,
                "server.port": port,
            },
        )
        t += self.ms(0.2, 1.5)
        if self.rng.random() < 0.04:  # refused: no server ever saw it
            client.set_status(Status(StatusCode.ERROR, "ConnectError: connection refused"))
            client.end(end_time=t)
            return t, 0
        lost = self.dropped()
        server = self.span(
            target,
            f"{method} {route}",
            SpanKind.SERVER,
            None if lost else client,
            t,
            *on,
            **(
                {"http.request.method": method, "http.route": route}
                if self.sparse
                else {
                    "http.request.method": method,
                    "url.path": path,
                    "http.route": route,
                    "server.address": target,
                    "server.port": port,
                }
            ),
        )
        self.last_http = TrueHop("http", _key(client), _key(server), lost)
        self.hops.append(self.last_http)
        end, status = serve(server, t)
        server.set_attribute("http.response.status_code", status)
        server.end(end_time=end)
        t = end + self.ms(0.2, 1.5)
        client.set_attribute("http.response.status_code", status)
        if status >= 500:
            client.set_status(Status(StatusCode.ERROR))
        client.end(end_time=t)
        return t, status

    def thread_hop(self, service: str, parent: Any, t: int, name: str, task: str | None) -> int:
        """Work handed to a pool thread (`task`: from an asyncio task, run_in_executor)."""
        lost = self.dropped()
        if task is None:
            thread = f"ThreadPoolExecutor-0_{self.rng.randint(0, 7)}"
        else:
            thread = f"asyncio_{self.rng.randint(0, 3)}"
        t += self.ms(0.05, 0.3)
        worker = self.span(service, name, SpanKind.INTERNAL, None if lost else parent, t, thread)
        self.hops.append(TrueHop("task" if task else "thread", _key(parent), _key(worker), lost))
        end = self.db(service, worker, t + self.ms(0.1, 0.5), thread)
        end += self.ms(0.2, 3)
        worker.end(end_time=end)
        return end + self.ms(0.05, 0.3)

    def kafka(self, parent: Any, t: int, thread: str, order: int) -> int:
        keyed = self.rng.random() < 0.75 and not self.sparse
        partition = order % 3
        attrs: dict[str, Any] = {
            "messaging.system": "kafka",
            "messaging.destination.name": "orders",
            "messaging.destination.partition.id": str(partition),
        }
        if keyed:
            attrs["messaging.kafka.message.key"] = f"order-{order}"
        producer = self.span("orders", "send orders", SpanKind.PRODUCER, parent, t, thread, **attrs)
        t += self.ms(0.3, 2)
        producer.end(end_time=t)
        lost = self.dropped()
        start = t + self.ms(5, 200)
        consumer = self.span(
            "shipping",
            "process orders",
            SpanKind.CONSUMER,
            None if lost else producer,
            start,
            "MainThread",
            **attrs,
            **{"messaging.kafka.offset": order},
        )
        self.hops.append(TrueHop("kafka", _key(producer), _key(consumer), lost))
        end = self.db("shipping", consumer, start + self.ms(0.1, 1), "MainThread")
        consumer.end(end_time=end + self.ms(0.1, 2))
        return t

    def celery(self, parent: Any, t: int, thread: str) -> int:
        task_id = str(uuid.UUID(int=self.rng.getrandbits(128)))
        attrs = {
            "messaging.system": "celery",
            "celery.task.name": "notify.email",
            "messaging.message.id": task_id,
            "messaging.destination.name": "celery",
        }
        producer = self.span(
            "orders", "send notify.email", SpanKind.PRODUCER, parent, t, thread, **attrs
        )
        t += self.ms(0.3, 2)
        producer.end(end_time=t)
        lost = self.dropped()
        start = t + self.ms(10, 500)
        worker = self.span(
            "notify",
            "run notify.email",
            SpanKind.CONSUMER,
            None if lost else producer,
            start,
            "MainThread",
            **attrs,
        )
        self.hops.append(TrueHop("celery", _key(producer), _key(worker), lost))
        worker.end(end_time=start + self.ms(1, 30))
        return t

    # -- services ----------------------------------------------------------------------------
    def payments(self, server: Any, t: int, task: str) -> tuple[int, int]:
        t += self.ms(0.1, 0.5)
        t = self.thread_hop("payments", server, t, "payments.sign", task)
        t = self.db("payments", server, t, "MainThread", task)
        if self.rng.random() < 0.15:  # declined: the error is born here, orders absorbs it
            server.add_event(
                "exception",
                {"exception.type": "PaymentDeclined", "exception.message": "card declined"},
            )
            server.set_status(Status(StatusCode.ERROR, "PaymentDeclined: card declined"))
            return t + self.ms(0.1, 1), 502
        return t + self.ms(0.1, 1), 200

    def orders(self, server: Any, t: int, order: int, thread: str) -> tuple[int, int]:
        t += self.ms(0.1, 0.5)
        t = self.db("orders", server, t, thread)
        t = self.thread_hop("orders", server, t, "orders.price", None)
        path = f"/payments/charge/{order}"

        self.tasks += 1
        task = f"Task-{self.tasks}"

        def serve(s: Any, now: int) -> tuple[int, int]:
            return self.payments(s, now, task)

        t, status = self.http(
            "orders",
            server,
            t,
            thread,
            None,
            "payments",
            "POST",
            "/payments/charge/{id}",
            path,
            serve,
            ("MainThread", task),
        )
        if status >= 500:  # caught: the order is kept as unpaid
            self.absorbed.append((self.last_http.callee, _key(server)))
            return t + self.ms(0.1, 1), 200
        t = self.kafka(server, t, thread, order)
        t = self.celery(server, t, thread)
        return t + self.ms(0.1, 1), 200

    def inventory(self, server: Any, t: int) -> tuple[int, int]:
        t = self.db("inventory", server, t + self.ms(0.1, 0.4), "MainThread")
        return t + self.ms(0.1, 1), 200

    def request(self, t: int) -> None:
        self.order += 1
        self.tasks += 1
        order, task = self.order, f"Task-{self.tasks}"
        root = self.span(
            "gateway",
            "POST /checkout",
            SpanKind.SERVER,
            None,
            t,
            "MainThread",
            task,
            **{"http.request.method": "POST", "url.path": "/checkout", "http.route": "/checkout"},
        )
        t = self.db("gateway", root, t + self.ms(0.1, 0.5), "MainThread", task)
        sku = self.rng.randint(1, 50)
        t, _ = self.http(
            "gateway",
            root,
            t,
            "MainThread",
            task,
            "inventory",
            "GET",
            "/inventory/{sku}",
            f"/inventory/{sku}",
            self.inventory,
            ("MainThread", None),
        )
        thread = f"Thread-{self.rng.randint(1, 80)} (process_request_thread)"

        def serve(s: Any, now: int) -> tuple[int, int]:
            return self.orders(s, now, order, thread)

        t, status = self.http(
            "gateway",
            root,
            t,
            "MainThread",
            task,
            "orders",
            "POST",
            "/orders/{id}",
            f"/orders/{order}",
            serve,
            (thread, None),
        )
        root.set_attribute("http.response.status_code", status or 503)
        root.end(end_time=t + self.ms(0.1, 1))

    def noise(self, start: int, seconds: float) -> None:
        """Roots that are no lost hop, and calls whose callee is not instrumented."""
        end = start + int(seconds * 1e9)
        for service in _SERVICES:
            t = start + self.ms(0, 1000)
            while t < end:  # a scheduler thread's own work: a root on a thread of its own
                s = self.span(service, "refresh cache", SpanKind.INTERNAL, None, t, "scheduler")
                s.end(end_time=t + self.ms(1, 20))
                t += self.ms(800, 1200)
        t = start + self.ms(0, 500)
        while t < end:  # a periodic asyncio task of payments: a root on the loop's thread
            self.tasks += 1
            s = self.span(
                "payments",
                "sweep holds",
                SpanKind.INTERNAL,
                None,
                t,
                "MainThread",
                f"Task-{self.tasks}",
            )
            s.end(end_time=t + self.ms(1, 10))
            t += self.ms(400, 600)
        t = start + self.ms(0, 1000)
        while t < end:  # a legacy producer nobody instrumented: consumer roots, nobody called
            s = self.span(
                "shipping",
                "process orders",
                SpanKind.CONSUMER,
                None,
                t,
                "MainThread",
                **{
                    "messaging.system": "kafka",
                    "messaging.destination.name": "orders",
                    "messaging.kafka.message.key": f"legacy-{t % 997}",
                },
            )
            s.end(end_time=t + self.ms(1, 5))
            t += self.ms(700, 1300)
        t = start + self.ms(0, 1000)
        while t < end:  # audit events whose consumer is not instrumented
            s = self.span(
                "gateway",
                "send audit",
                SpanKind.PRODUCER,
                None,
                t,
                "MainThread",
                **{"messaging.system": "kafka", "messaging.destination.name": "audit"},
            )
            s.end(end_time=t + self.ms(0.2, 1))
            t += self.ms(300, 700)


def generate_broken(
    seconds: float = 20.0,
    seed: int = 1,
    drop: float = 0.3,
    rate: float = 10.0,
    also: SpanExporter | None = None,
    sparse: bool = False,
) -> BrokenRun:
    """`seconds` of traffic at `rate` requests per second; each hop drops with `drop`. The
    spans go to `also` too (e.g. a file exporter), as the SDK exports them. `sparse`: what
    thinner instrumentation leaves, server spans with only method and route (no path, no
    address) and Kafka records without keys."""
    exporter = InMemorySpanExporter()
    tracers = {}
    for service in _SERVICES:
        provider = TracerProvider(resource=Resource.create({"service.name": service}))
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        if also is not None:
            provider.add_span_processor(SimpleSpanProcessor(also))
        tracers[service] = provider.get_tracer("generator_broken")
    rng = random.Random(seed)
    run = _Run(rng, drop, tracers, sparse)
    start = 1_700_000_000_000 * MS
    t = start
    end = start + int(seconds * 1e9)
    while True:
        t += int(rng.expovariate(rate) * 1e9)
        if t >= end:
            break
        run.request(t)
    run.noise(start, seconds)
    spans = from_readable_spans(exporter.get_finished_spans()).spans
    return BrokenRun(spans, run.hops, run.absorbed)


@dataclasses.dataclass(slots=True)
class HopScore:
    """Per hop kind: true dropped hops, findings, findings right (caller and callee both),
    findings whose call was truly dropped (the callee named may differ)."""

    dropped: int = 0
    found: int = 0
    right: int = 0
    call_right: int = 0

    @property
    def precision(self) -> float:
        return self.right / self.found if self.found else 1.0

    @property
    def recall(self) -> float:
        return self.right / self.dropped if self.dropped else 1.0


def score(run: BrokenRun, findings: list[Any]) -> dict[str, HopScore]:
    """Score dropped-hop and in-process-loss findings against the truth, per hop kind."""
    truth = {h.caller: h for h in run.hops if h.dropped and h.hop in ("http", "celery", "kafka")}
    # an in-process hop's caller may call several times; key those by the callee
    inproc = {h.callee: h for h in run.hops if h.dropped and h.hop in ("thread", "task")}
    out = {hop: HopScore() for hop in HOPS}
    for h in run.hops:
        if h.dropped:
            out[h.hop].dropped += 1
    for f in findings:
        if f.kind not in ("dropped-hop", "in-process-loss"):
            continue
        row = out.setdefault(f.hop, HopScore())
        row.found += 1
        caller, callee = (
            (f.caller.trace_id, f.caller.span_id),
            (f.callee.trace_id, f.callee.span_id),
        )
        true = truth.get(caller) if f.kind == "dropped-hop" else inproc.get(callee)
        if true is None or true.hop != f.hop:
            continue
        row.call_right += 1
        if true.caller == caller and true.callee == callee:
            row.right += 1
    return out
