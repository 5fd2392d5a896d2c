"""Realistic traces with ground truth, for measuring the visualiser's analysis.

One seeded random *program* per trace (services calling each other over HTTP, nested internal
work, database calls, retries that recover or not, absorb-then-fail, translation with
``raise ... from``, Kafka-style producer → consumer hops, fire-and-forget work) is executed on
the real OpenTelemetry SDK with a simulated clock, in one of two variants:

- ``"plain"``: what stock OTel instrumentation leaves — an ``exception`` event (with the
  formatted stack, chain included, where the service records stacks) and ERROR status on every
  span an exception escapes, ``http.response.status_code`` on HTTP spans, 4xx on a server span
  not an error, the client span of a failed call in error without an exception event;
- ``"tracectx"``: the same program recorded by tracectx itself (`record_error`, `handled`,
  ``tracectx.retry`` events, a ``thread …`` failure span for a thread with no span of its own,
  an HTTP error rebuilt on the caller's side with its identity, as the envelope does).

Both variants of one seed run the same program (the recorder never draws from the random
generator), and every exception object is followed while it runs, so each trace comes with the
true path of every error: its origin span, the spans it escaped, and whether it was absorbed
(and by which span), escaped the trace, or was never observed.
"""

from __future__ import annotations

import dataclasses
import random
import re
import traceback
from collections import defaultdict
from collections.abc import Iterator
from typing import Any, Literal

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from tracectx import semconv as sc
from tracectx.classify import classify
from tracectx.errors import error_id, type_name
from tracectx.recording import mark_handled, record_error
from tracectx.viz.model import Span
from tracectx.viz.sources.memory import from_readable_spans

__all__ = ["CATEGORIES", "GeneratedTrace", "Scores", "TruePath", "Variant", "generate", "measure"]

Variant = Literal["plain", "tracectx"]
CATEGORIES = ("task/thread-named", "http 4xx server")  # spans whose errors are also scored apart
_TASK_LIKE = re.compile(r"^(thread |task |Task-\d+$)")  # named like a task's or a thread's
MS = 1_000_000


# -- the errors a program raises (their type names are what a plain trace shows) -------------
class DBTimeout(TimeoutError):
    pass


class ConnectionRefused(ConnectionError):
    pass


class PaymentDeclined(Exception):
    pass


class ValidationFailed(ValueError):
    pass


class NotFound(LookupError):
    pass


class HTTPStatusError(Exception):
    pass


class UpstreamUnavailable(RuntimeError):
    pass


class ReportFailed(RuntimeError):
    pass


class CacheCorrupt(KeyError):
    pass


_LEAF_ERRORS: list[tuple[type[Exception], str]] = [
    (DBTimeout, "query timed out after {n} ms"),
    (ConnectionRefused, "connection refused by 10.0.{n}.7"),
    (PaymentDeclined, "card declined (rule {n})"),
    (ValidationFailed, "field sku_{n} is not valid"),
    (NotFound, "order {n} not found"),
    (CacheCorrupt, "cache entry {n} unreadable"),
]
_OWN_ERRORS: list[tuple[type[Exception], str]] = [
    (ReportFailed, "could not build the summary ({n})"),
    (ValidationFailed, "total {n} does not match the lines"),
    (UpstreamUnavailable, "no healthy replica for shard {n}"),
]
_CLIENT_ERRORS = (NotFound, ValidationFailed, PaymentDeclined)  # answered with a 4xx

_SERVICES = ["gateway", "orders", "payments", "inventory", "pricing", "shipping", "users"]
_OPS = ["validate", "price", "persist", "load", "plan", "score", "render", "reserve", "fetch"]
_TABLES = ["orders", "payments", "stock", "users", "prices"]


@dataclasses.dataclass(slots=True)
class TruePath:
    """Where one error was born, the spans it escaped, and how it ended."""

    origin: str
    scenario: str
    propagators: list[str] = dataclasses.field(default_factory=list)
    outcome: str = "escaped"  # absorbed / escaped / unobserved
    absorber: str | None = None


@dataclasses.dataclass(slots=True)
class GeneratedTrace:
    """One generated trace: its spans in the visualiser's model and the true error paths."""

    trace_id: str
    spans: list[Span]
    truth: list[TruePath]
    categories: dict[str, set[str]] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(slots=True)
class _Profile:
    """How a service's instrumentation records errors in a plain trace."""

    stack: bool  # exception events carry the formatted stack (with the chain)
    events: bool  # exception events at all (else status only)


def _status_code(exc: BaseException) -> int:
    """The HTTP answer a server gives for `exc`: 404/422 for client errors, else 500."""
    if isinstance(exc, NotFound):
        return 404
    return 422 if isinstance(exc, _CLIENT_ERRORS) else 500


def _sid(span: Any) -> str:
    return format(span.get_span_context().span_id, "016x")


class _Recorder:
    """Plain OTel recording; `_TracectxRecorder` records by the tracectx contract instead."""

    variant: Variant = "plain"

    def __init__(self, profiles: dict[str, _Profile]) -> None:
        self.profiles = profiles
        self.now: int | None = None  # the simulated time, for the events written next

    def async_retry(self, span: Any, attempt: int) -> None:
        """A consumer run failed and its message will run again (stock OTel says nothing)."""

    def escape(self, span: Any, service: str, exc: BaseException) -> None:
        """`exc` left `span` (what ``start_as_current_span`` does when an exception leaves)."""
        self._exception_event(span, service, exc, escaped=True)
        span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))

    def absorb(self, span: Any, service: str, exc: BaseException, record: bool) -> None:
        if record:
            self._exception_event(span, service, exc, escaped=False)

    def retry(self, span: Any, exc: BaseException, attempt: int) -> None:
        pass

    def server_failed(self, span: Any, service: str, exc: BaseException, code: int) -> None:
        span.set_attribute("http.response.status_code", code)
        if code >= 500:  # a 4xx answer is no server error (OTel HTTP semantic conventions)
            self.escape(span, service, exc)

    def caller_error(self, exc: BaseException, code: int, url: str) -> BaseException:
        """What the caller raises for an HTTP error answer (``raise_for_status``)."""
        word = "Client" if code < 500 else "Server"
        return HTTPStatusError(f"{word} error '{code}' for url '{url}'")

    def _exception_event(self, span: Any, service: str, exc: BaseException, escaped: bool) -> None:
        profile = self.profiles[service]
        if not profile.events:
            return
        attrs: dict[str, Any] = {
            sc.EXC_TYPE: type(exc).__name__,
            sc.EXC_MESSAGE: str(exc),
            "exception.escaped": str(escaped),
        }
        if profile.stack:
            attrs[sc.EXC_STACKTRACE] = "".join(traceback.format_exception(exc))
        span.add_event(sc.EVENT_EXCEPTION, attrs, timestamp=self.now)


class _TracectxRecorder(_Recorder):
    variant: Variant = "tracectx"

    def escape(self, span: Any, service: str, exc: BaseException) -> None:
        record_error(exc, span)

    def absorb(self, span: Any, service: str, exc: BaseException, record: bool) -> None:
        if record:  # else caught and dropped without telling tracectx
            mark_handled(exc, span)

    def retry(self, span: Any, exc: BaseException, attempt: int) -> None:
        span.add_event(  # what tracectx.retry writes before each new attempt
            sc.EVENT_RETRY,
            {
                sc.ATTR_ATTEMPT: attempt,
                sc.ATTR_RETRY_WAIT_S: 0.05,
                sc.ATTR_ID: error_id(exc),
                sc.ATTR_KIND: classify(exc).name,
                sc.ATTR_ERROR_TYPE: type_name(exc),
            },
        )

    def server_failed(self, span: Any, service: str, exc: BaseException, code: int) -> None:
        span.set_attribute("http.response.status_code", code)
        record_error(exc, span)  # the ASGI middleware records every escaping error

    def async_retry(self, span: Any, attempt: int) -> None:
        span.set_attribute("celery.state", "RETRY")  # what the Celery integration writes
        span.add_event(sc.EVENT_RETRY, {sc.ATTR_ATTEMPT: attempt})

    def caller_error(self, exc: BaseException, code: int, url: str) -> BaseException:
        return exc  # the problem+json envelope rebuilds the error with its id and origin


class _Program:
    """Runs one seeded program on the SDK, recording by `rec` and noting the truth."""

    def __init__(
        self, rng: random.Random, rec: _Recorder, tracers: dict[str, trace.Tracer]
    ) -> None:
        self.rng = rng
        self.rec = rec
        self.tracers = tracers
        self.paths: dict[int, TruePath] = {}
        self.keep: list[BaseException] = []  # ids stay unique while the trace runs
        self.truth: list[TruePath] = []
        self.threads = 0
        self.dropped: set[str] = set()
        self.late: list[tuple[str, str, int]] = []  # (detached span, its parent, how late)
        self.consumers: list[tuple[Any, Any, int, str, str]] = []
        self.tagged: dict[str, set[str]] = defaultdict(set)  # category -> its span ids

    # -- helpers ---------------------------------------------------------------------------
    def _start(
        self, name: str, service: str, kind: SpanKind, parent: Any, t: int, links: Any = ()
    ) -> Any:
        ctx = trace.set_span_in_context(parent) if parent is not None else None
        return self.tracers[service].start_span(
            name, context=ctx, kind=kind, start_time=t, links=list(links)
        )

    def _work(self, lo: float = 0.05, hi: float = 3.0) -> int:
        return int(self.rng.uniform(lo, hi) * MS)

    def _new_error(
        self, span: Any, table: list[tuple[type[Exception], str]], scenario: str
    ) -> Exception:
        cls, text = self.rng.choice(table)
        exc = cls(text.format(n=self.rng.randint(1, 999)))
        path = TruePath(_sid(span), scenario)
        self.paths[id(exc)] = path
        self.keep.append(exc)
        self.truth.append(path)
        return exc

    def _escaped(self, span: Any, exc: BaseException) -> None:
        path = self.paths[id(exc)]
        if path.origin != _sid(span):
            path.propagators.append(_sid(span))

    def _absorbed(self, span: Any, exc: BaseException, how: str = "absorbed") -> None:
        path = self.paths[id(exc)]
        path.outcome = how
        path.absorber = _sid(span) if how == "absorbed" else None

    def _continue(self, old: BaseException, new: BaseException) -> None:
        self.paths[id(new)] = self.paths[id(old)]
        self.keep.append(new)

    # -- operations ------------------------------------------------------------------------
    def run_root(self) -> None:
        service = "gateway"
        t = 1_700_000_000_000 * MS + self.rng.randint(0, 10**9)
        if self.rng.random() < 0.08:
            self.probe(t)
            return
        name = f"POST /{self.rng.choice(['checkout', 'orders', 'refunds', 'carts'])}"
        _, exc, span = self.op(None, t, 0, service, name, SpanKind.SERVER)
        if exc is None:
            return
        path = self.paths[id(exc)]
        if _status_code(exc) >= 500 or self.rec.variant == "tracectx":
            path.outcome = "escaped"
        elif path.origin == _sid(span):  # a 4xx answer of its own: no error by the conventions
            self.truth.remove(path)
        else:  # the framework answered the error as a 4xx: the request absorbed it
            path.propagators.remove(_sid(span))
            self._absorbed(span, exc)

    def probe(self, t: int) -> None:
        """A readiness probe answered 404 (not ready yet): no error anywhere."""
        span = self._start("GET /ready", "gateway", SpanKind.SERVER, None, t)
        t += self._work(0.02, 0.2)
        if self.rng.random() < 0.5:
            t, _ = self.db(span, t, "gateway", False, "SELECT 1", fail=False)
        span.set_attribute("http.response.status_code", 404)
        self.tagged["http 4xx server"].add(_sid(span))
        span.end(end_time=t + self._work(0.02, 0.2))

    def op(
        self,
        parent: Any,
        t: int,
        depth: int,
        service: str,
        name: str | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        force_fail: bool = False,
    ) -> tuple[int, BaseException | None, Any]:
        """An operation in `service`: its children, then maybe its own failure."""
        rng = self.rng
        name = name or f"{service}.{rng.choice(_OPS)}"
        span = self._start(name, service, kind, parent, t)
        t += self._work(0.02, 0.5)
        fanout = [rng.randint(2, 5), rng.randint(1, 3), rng.randint(0, 2), rng.randint(0, 1)]
        n_children = fanout[depth] if depth < len(fanout) else 0
        failing: BaseException | None = None
        own_after = False  # absorb-then-fail: the span fails for its own reason at the end
        for _ in range(n_children):
            t, exc = self.child(span, t, depth, service)
            t += self._work(0.01, 0.3)
            if exc is None:
                continue
            self.rec.now = t
            failing, own_after, stop = self.react(span, service, exc, own_after)
            if stop:
                break
        if failing is None and not own_after:
            chance = 0.6 if force_fail else (0.12 if n_children == 0 else 0.04)
            if rng.random() < chance:
                failing = self._new_error(
                    span, _LEAF_ERRORS if n_children == 0 else _OWN_ERRORS, "own failure"
                )
        if failing is None and own_after:
            t += self._work(0.3, 3.0)  # its own work, then its own failure
            failing = self._new_error(span, _OWN_ERRORS, "absorb-then-fail")
        t += self._work(0.02, 1.0)
        self.rec.now = t
        if failing is not None:
            self._escaped(span, failing)
            if kind == SpanKind.SERVER and parent is None and self.rec.variant == "plain":
                code = _status_code(failing)
                span.set_attribute("http.response.status_code", code)
                if code >= 500:
                    self.rec.escape(span, service, failing)
                else:
                    self.tagged["http 4xx server"].add(_sid(span))
            elif kind == SpanKind.SERVER and parent is not None:
                code = _status_code(failing)
                self.rec.server_failed(span, service, failing, code)
            else:
                self.rec.escape(span, service, failing)
        elif kind == SpanKind.SERVER:
            span.set_attribute("http.response.status_code", 200)
        span.end(end_time=t)
        return t, failing, span

    def react(
        self, span: Any, service: str, exc: BaseException, own_after: bool
    ) -> tuple[BaseException | None, bool, bool]:
        """What a span does with an error a child raised: (failing, own error later, stop)."""
        rng = self.rng
        roll = rng.random()
        if roll < 0.45:  # not caught: it leaves this span too
            return exc, own_after, True
        if roll < 0.60:  # translated: raise NewError from old
            why = f": {type(exc).__name__}" if rng.random() < 0.5 else ""
            new = UpstreamUnavailable(f"{span.name} failed{why}")
            new.__cause__ = exc
            self.paths[id(exc)].scenario = "translation"
            self._continue(exc, new)
            return new, own_after, True
        record = rng.random() < 0.6
        self.rec.absorb(span, service, exc, record)
        self._absorbed(span, exc)
        if roll < 0.85 or own_after:
            return None, own_after, False
        self.paths[id(exc)].scenario = "absorb-then-fail"
        if rng.random() < 0.3:  # raised in the except block: implicit context, not a cause
            own = self._new_error(span, _OWN_ERRORS, "absorb-then-fail")
            own.__context__ = exc
            return own, False, True
        return None, True, False

    def child(
        self, span: Any, t: int, depth: int, service: str
    ) -> tuple[int, BaseException | None]:
        """One call from `span`: returns when the caller resumes, and what it raised."""
        rng = self.rng
        if depth >= 3:
            choice = rng.choice(["db", "db", "call"])
        else:
            choice = rng.choices(
                ["call", "db", "http", "retry", "detach", "publish"], [3, 3, 3, 0.7, 0.6, 0.8]
            )[0]
        if choice == "call":
            end, exc, _ = self.op(span, t, depth + 1, service, self._task_name(service))
            return end, exc
        if choice == "db":
            return self.db(span, t, service, False, self._db_name())
        if choice == "http":
            return self.http(span, t, depth, service, False, self._route(service))
        if choice == "retry":
            return self.retry(span, t, depth, service)
        if choice == "detach":
            return self.detach(span, t, depth, service)
        return self.publish(span, t, service)

    def _task_name(self, service: str) -> str | None:
        """Now and then a name like a task's or a thread's, for work that is awaited all the
        same (plain-OTel users name awaited spans so too); else None (the usual name)."""
        if self.rng.random() >= 0.2:
            return None
        self.threads += 1
        op = self.rng.choice(_OPS)
        return f"task {service}.{op}" if self.rng.random() < 0.6 else f"thread {op}-{self.threads}"

    def _db_name(self) -> str:
        return f"{self.rng.choice(['SELECT', 'INSERT', 'UPDATE'])} {self.rng.choice(_TABLES)}"

    def _route(self, service: str) -> tuple[str, str, str]:
        target = self.rng.choice([s for s in _SERVICES if s not in (service, "gateway")])
        return target, f"/{target}/{self.rng.choice(_OPS)}", self.rng.choice(["GET", "POST"])

    def db(
        self, parent: Any, t: int, service: str, force: bool, name: str, fail: bool = True
    ) -> tuple[int, BaseException | None]:
        span = self._start(name, service, SpanKind.CLIENT, parent, t)
        span.set_attribute("db.system", "postgresql")
        t += self._work(0.1, 4.0)
        exc: BaseException | None = None
        if self.rng.random() < (0.55 if force else 0.1) and fail:
            exc = self._new_error(span, _LEAF_ERRORS[:2], "database")
            self._escaped(span, exc)
            self.rec.now = t
            self.rec.escape(span, service, exc)
        span.end(end_time=t)
        return t, exc

    def http(
        self,
        parent: Any,
        t: int,
        depth: int,
        service: str,
        force: bool,
        route: tuple[str, str, str],
    ) -> tuple[int, BaseException | None]:
        rng = self.rng
        target, path, method = route
        client = self._start(f"{method} {path}", service, SpanKind.CLIENT, parent, t)
        client.set_attribute("http.request.method", method)
        t += self._work(0.1, 0.5)
        if rng.random() < (0.25 if force else 0.04):  # no answer at all: the client raised
            exc = self._new_error(
                client, [(ConnectionRefused, f"connect to {target} ({{n}})")], "http"
            )
            self._escaped(client, exc)
            self.rec.now = t
            self.rec.escape(client, service, exc)
            client.end(end_time=t)
            return t, exc
        end, served_exc, server = self.op(
            client, t, depth + 1, target, f"{method} {path}", SpanKind.SERVER, force
        )
        t = end + self._work(0.1, 0.5)
        if served_exc is None:
            client.set_attribute("http.response.status_code", 200)
            client.end(end_time=t)
            return t, None
        code = _status_code(served_exc)
        if code < 500:
            self.tagged["http 4xx server"].add(_sid(server))
        client.set_attribute("http.response.status_code", code)
        client.set_status(Status(StatusCode.ERROR))  # instrumentations leave no description
        self._escaped(client, served_exc)
        if self.paths[id(served_exc)].scenario == "own failure":
            self.paths[id(served_exc)].scenario = "http"
        client.end(end_time=t)
        caller_exc = self.rec.caller_error(served_exc, code, f"http://{target}{path}")
        if caller_exc is not served_exc:
            self._continue(served_exc, caller_exc)
        return t, caller_exc

    def retry(
        self, span: Any, t: int, depth: int, service: str
    ) -> tuple[int, BaseException | None]:
        """Up to 4 attempts of one operation; earlier failures are retried (absorbed here)."""
        rng = self.rng
        attempts = rng.randint(2, 4)
        use_http = depth < 2 and rng.random() < 0.5
        route, name = self._route(service), self._db_name()
        exc: BaseException | None = None
        for attempt in range(1, attempts + 1):
            if use_http:
                t, exc = self.http(span, t, depth, service, True, route)
            else:
                t, exc = self.db(span, t, service, True, name)
            if exc is None:
                return t, None
            self.paths[id(exc)].scenario = "retry"
            if attempt < attempts:
                self.rec.retry(span, exc, attempt)
                self._absorbed(span, exc)
                t += self._work(1.0, 20.0)  # back-off
        return t, exc

    def detach(
        self, span: Any, t: int, depth: int, service: str
    ) -> tuple[int, BaseException | None]:
        """Fire-and-forget work the caller never waits for: its error is unobserved."""
        rng = self.rng
        own_span = rng.random() < 0.6
        long_running = rng.random() < 0.75
        if own_span:
            name = f"task {service}.{rng.choice(_OPS)}" if rng.random() < 0.5 else None
            _, exc, child = self.op(span, t, depth + 1, service, name, force_fail=True)
            if exc is not None:
                self.paths[id(exc)].scenario = "fire-and-forget"
                self._absorbed(span, exc, "unobserved")
        else:  # a bare thread: tracectx leaves a `thread …` span for its error, OTel nothing
            self.threads += 1
            child = self._start(f"thread bg-{self.threads}", service, SpanKind.INTERNAL, span, t)
            exc = self._new_error(child, _LEAF_ERRORS, "fire-and-forget")
            self._absorbed(child, exc, "unobserved")
            self.rec.now = t
            if self.rec.variant == "tracectx":
                self.rec.escape(child, service, exc)
            else:  # no span in a plain trace: drop it, and its error from the truth
                self.truth.remove(self.paths[id(exc)])
                self.dropped.add(_sid(child))
            child.end(end_time=t + self._work(0.5, 5.0))
        if long_running:
            self.late.append((_sid(child), _sid(span), rng.randint(1, 50) * MS))
        return t + self._work(0.02, 0.2), None

    def publish(self, span: Any, t: int, service: str) -> tuple[int, BaseException | None]:
        rng = self.rng
        topic = rng.choice(["orders", "payments", "emails"])
        producer = self._start(f"send {topic}", service, SpanKind.PRODUCER, span, t)
        t += self._work(0.1, 1.0)
        if rng.random() < 0.08:
            exc = self._new_error(
                producer, [(ConnectionRefused, "broker unreachable ({n})")], "messaging"
            )
            self._escaped(producer, exc)
            self.rec.now = t
            self.rec.escape(producer, service, exc)
            producer.end(end_time=t)
            return t, exc
        producer.end(end_time=t)
        consumer_service = rng.choice(["shipping", "notify", "ledger"])
        start = t + self._work(5.0, 200.0)
        link = Link(producer.get_span_context()) if rng.random() < 0.5 else None
        self.consumers.append((producer, link, start, consumer_service, topic))
        return t, None

    def consume(self, producer: Any, link: Any, start: int, service: str, topic: str) -> None:
        """Consumer runs of a published message: each a new async root in the same trace. A
        run that fails may be run again (a Celery retry, linked to the failed run, or a Kafka
        redelivery): the next run absorbs its error, as an in-process retry does."""
        retried: TruePath | None = None
        links = [link] if link else []
        message_id = f"msg-{self.rng.randint(1, 10**9)}"
        for attempt in range(1, 4):
            consumer = self._start(
                f"process {topic}", service, SpanKind.CONSUMER, producer, start, links
            )
            consumer.set_attribute("messaging.message.id", message_id)
            if retried is not None:
                retried.absorber = _sid(consumer)
            failing, t = self._consumer_run(consumer, start, service)
            if failing is None:
                consumer.end(end_time=t)
                return
            path = self.paths[id(failing)]
            path.outcome = "escaped"
            self._escaped(consumer, failing)
            self.rec.now = t
            self.rec.escape(consumer, service, failing)
            if attempt == 3 or self.rng.random() >= 0.5:
                consumer.end(end_time=t)
                return
            path.scenario = "async retry"
            self._absorbed(consumer, failing)  # the absorber is the next run, set when it starts
            self.rec.async_retry(consumer, attempt)
            consumer.end(end_time=t)
            retried = path
            celery_retry = self.rng.random() < 0.5
            links = [Link(consumer.get_span_context())] if celery_retry else []
            start = t + self._work(5.0, 500.0)

    def _consumer_run(
        self, consumer: Any, start: int, service: str
    ) -> tuple[BaseException | None, int]:
        """The work of one consumer run: what left it (None: it succeeded) and when it ended."""
        t = start + self._work(0.05, 0.3)
        failing: BaseException | None = None
        for _ in range(self.rng.randint(1, 2)):
            t, exc, _ = self.op(consumer, t, 2, service)
            if exc is None:
                continue
            self.paths[id(exc)].scenario = "consumer"
            if self.rng.random() < 0.5:  # dead-lettered: the consumer handled it
                self.rec.now = t
                self.rec.absorb(consumer, service, exc, True)
                self._absorbed(consumer, exc)
            else:
                failing = exc
                break
        return failing, t + self._work(0.05, 0.3)


def generate(n: int, seed: int, variant: Variant = "plain") -> Iterator[GeneratedTrace]:
    """`n` traces from `seed`; the same `seed` and `n` give the same programs in both variants."""
    exporter = InMemorySpanExporter()
    rng0 = random.Random(seed)
    services = [*_SERVICES, "notify", "ledger"]
    profiles = {
        s: _Profile(stack=rng0.random() < 0.7, events=rng0.random() < 0.92) for s in services
    }
    tracers = {}
    for service in services:
        provider = TracerProvider(resource=Resource.create({"service.name": service}))
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        tracers[service] = provider.get_tracer("generator")
    rec = _TracectxRecorder(profiles) if variant == "tracectx" else _Recorder(profiles)
    for index in range(n):
        program = _Program(random.Random(f"{seed}/{index}"), rec, tracers)
        program.run_root()
        for pending in program.consumers:
            program.consume(*pending)
        readable = exporter.get_finished_spans()
        exporter.clear()
        spans = [s for s in from_readable_spans(readable).spans if s.span_id not in program.dropped]
        _outlive(spans, program.late)
        program.tagged["task/thread-named"].update(
            s.span_id for s in spans if _TASK_LIKE.match(s.name)
        )
        yield GeneratedTrace(
            spans[0].trace_id, spans, program.truth, {k: set(v) for k, v in program.tagged.items()}
        )


def _outlive(spans: list[Span], late: list[tuple[str, str, int]]) -> None:
    """Move long-running fire-and-forget work after its parent's end (it outlives the parent):
    everything under it shifts later, its own start (the spawn) stays."""
    by_id = {s.span_id: s for s in spans}
    kids: dict[str, list[Span]] = defaultdict(list)
    for s in spans:
        if s.parent_id:
            kids[s.parent_id].append(s)
    for child_id, parent_id, extra in late:
        child, parent = by_id.get(child_id), by_id.get(parent_id)
        if child is None or parent is None:
            continue
        shift = max(parent.end_ns + extra - child.end_ns, 0)
        child.end_ns += shift
        stack = list(kids[child_id])
        while stack:
            s = stack.pop()
            s.start_ns += shift
            s.end_ns += shift
            stack.extend(kids[s.span_id])


@dataclasses.dataclass(slots=True)
class Scores:
    """How well the analysis found the generated truth.

    `origin`: true origins found as origins, over true and reported origins together (a missed
    origin and a made-up one both count against it). `absorber`: true errors whose origin was
    found and whose outcome and absorber match, over all true errors. Per scenario, the same
    two figures over the errors of that scenario."""

    errors: int = 0
    reported: int = 0
    origins_found: int = 0
    outcomes_right: int = 0
    by_scenario: dict[str, list[int]] = dataclasses.field(default_factory=dict)
    misses: list[tuple[str, TruePath]] = dataclasses.field(default_factory=list)
    # per category (CATEGORIES): [errors touching its spans, origins found, outcomes right,
    # paths reported with an origin among its spans that is no true origin]
    by_category: dict[str, list[int]] = dataclasses.field(
        default_factory=lambda: {c: [0, 0, 0, 0] for c in CATEGORIES}
    )

    def category(self, name: str) -> tuple[float, float]:
        """(origin, outcome) accuracy over the errors that touch a category's spans; a made-up
        origin among its spans counts against the origin figure."""
        n, origins, outcomes, made_up = self.by_category[name]
        union = n + made_up
        return (origins / union if union else 1.0), (outcomes / n if n else 1.0)

    @property
    def origin(self) -> float:
        union = self.errors + self.reported - self.origins_found
        return self.origins_found / union if union else 1.0

    @property
    def absorber(self) -> float:
        return self.outcomes_right / self.errors if self.errors else 1.0

    def add(self, trace: GeneratedTrace, errors: list[Any]) -> None:
        """Score one trace's reported error paths (`ErrorPath` list) against its truth."""
        reported = {e.origin: e for e in errors}
        self.errors += len(trace.truth)
        self.reported += len(reported)
        tagged = [(self.by_category[c], trace.categories.get(c, set())) for c in CATEGORIES]
        for true in trace.truth:
            row = self.by_scenario.setdefault(true.scenario, [0, 0, 0])
            touched = {true.origin, *true.propagators, true.absorber}
            rows = [row] + [crow for crow, ids in tagged if not ids.isdisjoint(touched)]
            for r in rows:
                r[0] += 1
            found = reported.get(true.origin)
            if found is None:
                self.misses.append((trace.trace_id, true))
                continue
            self.origins_found += 1
            for r in rows:
                r[1] += 1
            if found.outcome == true.outcome and found.absorber == true.absorber:
                self.outcomes_right += 1
                for r in rows:
                    r[2] += 1
            else:
                self.misses.append((trace.trace_id, true))
        true_origins = {true.origin for true in trace.truth}
        for origin in reported.keys() - true_origins:
            for crow, ids in tagged:
                if origin in ids:
                    crow[3] += 1


def measure(n: int, seed: int, variant: Variant) -> Scores:
    """Generate `n` traces and score the visualiser's analysis on them."""
    from tracectx.viz.analysis import analyse

    scores = Scores()
    for trace_ in generate(n, seed, variant):
        [analysis] = analyse(trace_.spans)
        scores.add(trace_, analysis.errors)
    return scores
