"""`setup()` and `teardown()`: a service traced with tracectx in one call.

In the style of ``sentry_sdk.init`` and ``logfire.configure``: the OTel SDK (service name,
sampling, where spans go), every tracectx integration whose library is installed, log
correlation and the unobserved-failure hooks. It follows OTel's environment variables
(``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT``,
``OTEL_TRACES_EXPORTER``, ``OTEL_TRACES_SAMPLER[_ARG]``, ``OTEL_BSP_*``,
``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS``); an SDK ``TracerProvider`` already set (by the app, or
by ``opentelemetry-instrument``) is added to, never replaced, and an integration already
instrumented is left as it is. Forked children get their own spans file and exporters
(`tracectx.span_sinks`). Calling `setup` again with the same arguments does nothing; with
others it tears down and sets up anew. `teardown` flushes and undoes everything `setup` did —
except the global provider it may have set, which OTel lets a process set only once; its span
processors are shut down.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

from tracectx import config, shutdown, span_sinks, wiring

__all__ = ["INTEGRATIONS", "Setup", "current", "setup", "teardown"]

_log = logging.getLogger("tracectx.setup")
_lock = threading.RLock()
_GROUP = "opentelemetry_instrumentor"
_PREFIX = "tracectx_"
#: Integration names `setup(integrations=...)` takes (entry point names without ``tracectx_``).
INTEGRATIONS = ("threading", "asgi", "celery", "kafka", "aiokafka", "confluent_kafka")


@dataclass(frozen=True)
class Setup:
    """What `setup` did: read it to log it, or in tests."""

    service_name: str
    provider: TracerProvider | None  # None: the global provider is not the SDK's; no spans out
    created_provider: bool  # False: added to a provider set before
    spans_file: Path | None  # this process's file (a forked child's differs)
    otlp: bool
    integrations: tuple[str, ...]  # instrumented by this call
    already_instrumented: tuple[str, ...]  # instrumented before (e.g. opentelemetry-instrument)
    arguments: tuple[tuple[str, Any], ...] = field(repr=False, default=())


@dataclass
class _State:
    setup: Setup
    sinks: span_sinks.ProcessSinks | None
    undo: list[Callable[[], object]]


_state: _State | None = None
_owned_provider: TracerProvider | None = None
# the ProcessSinks added to each provider, reused by every later setup on it
_provider_sinks: weakref.WeakKeyDictionary[TracerProvider, span_sinks.ProcessSinks] = (
    weakref.WeakKeyDictionary()
)


def current() -> Setup | None:
    """The setup in force, or None."""
    state = _state
    return state.setup if state else None


def setup(
    service_name: str | None = None,
    *,
    spans_file: str | os.PathLike[str] | None = None,
    otlp_endpoint: str | None = None,
    sample_rate: float | None = None,
    integrations: Iterable[str] | None = None,
    logs: bool = True,
    unobserved: bool = True,
    flush_on_sigterm: bool = True,
) -> Setup:
    """Trace this service with tracectx; returns what was done.

    Args:
        service_name: ``service.name``; default ``OTEL_SERVICE_NAME`` (or the resource
            attributes), else ``unknown_service``.
        spans_file: write spans as OTLP JSON lines here, for ``tracectx graph`` (default
            ``TRACECTX_SPANS_FILE``). ``{pid}`` and ``{service}`` are filled in; a forked child
            writes its own file (its pid before the first dot of the name if there is no
            ``{pid}``). Parent directories are created.
        otlp_endpoint: send spans over OTLP/HTTP to this collector base URL
            (``http://collector:4318``; ``/v1/traces`` is added). Without it, spans go over OTLP
            when ``OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT`` is set or ``OTEL_TRACES_EXPORTER``
            says ``otlp`` (``console`` prints them) — unless a provider was set before us,
            which exports what the environment asks for itself.
        sample_rate: keep this share of new traces (parent-based: a sampled caller's trace is
            kept); default ``OTEL_TRACES_SAMPLER[_ARG]``, else every trace.
        integrations: tracectx integrations to instrument (`INTEGRATIONS` names); default
            every one whose library is installed, less ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS``.
            A named one that cannot be instrumented raises.
        logs: add ``trace_id``/``span_id``/``error_*`` to every stdlib log record, and
            tracectx's processors to structlog if it is configured.
        unobserved: record and log unretrieved asyncio task failures (thread failures: the
            ``threading`` integration).
        flush_on_sigterm: flush spans when SIGTERM arrives, then let it do what it did
            (main thread only).
    """
    if integrations is not None and not isinstance(integrations, str):
        integrations = tuple(integrations)
    arguments = tuple(sorted(locals().items()))
    with _lock:
        if _state is not None:
            if _state.setup.arguments == arguments:
                return _state.setup
            _log.info("tracectx.setup: called again with other arguments; setting up anew")
            teardown()
        return _setup(arguments, **dict(arguments))


def _setup(
    arguments: tuple[tuple[str, Any], ...],
    *,
    service_name: str | None,
    spans_file: str | os.PathLike[str] | None,
    otlp_endpoint: str | None,
    sample_rate: float | None,
    integrations: Iterable[str] | None,
    logs: bool,
    unobserved: bool,
    flush_on_sigterm: bool,
) -> Setup:
    global _state
    wanted = _wanted_integrations(integrations)
    provider, created = _provider(service_name, sample_rate)
    service = str(
        (provider.resource if provider else _resource(service_name)).attributes.get(
            SERVICE_NAME, "unknown_service"
        )
    )
    template = os.fspath(spans_file) if spans_file else os.environ.get("TRACECTX_SPANS_FILE")
    spec = span_sinks.SinkSpec(
        spans_file=template or None,
        otlp_traces_url=_otlp_url(otlp_endpoint, created),
        console=created and "console" in _exporters_env(),
        service=service,
    )
    undo: list[Callable[[], object]] = []
    sinks = None
    path = span_sinks.spans_path(spec.spans_file, service) if spec.spans_file else None
    if provider is not None and (path or spec.otlp_traces_url is not None or spec.console):
        sinks = _sinks_for(provider, spec, path)
    try:
        done, before = _wire(
            service, integrations, wanted, logs, unobserved, flush_on_sigterm, undo
        )
    except BaseException:
        _undo(sinks, undo, timeout=0.0)  # a failed setup leaves nothing behind
        raise
    result = Setup(
        service_name=service,
        provider=provider,
        created_provider=created,
        spans_file=path,
        otlp=spec.otlp_traces_url is not None,
        integrations=tuple(done),
        already_instrumented=tuple(before),
        arguments=arguments,
    )
    _state = _State(result, sinks, undo)
    span_sinks.watch_forks(lambda: _state.sinks if _state else None)
    _log.info(
        "tracectx.setup: service %s, spans to %s; integrations: %s",
        service,
        ", ".join(
            [*([str(path)] if path else []), *(["OTLP"] if result.otlp else [])]
            + (["console"] if spec.console else [])
        )
        or "nowhere (no spans file, no OTLP)",
        ", ".join(done + [f"{n} (already)" for n in before]) or "none",
    )
    return result


def _sinks_for(
    provider: TracerProvider, spec: span_sinks.SinkSpec, path: Path | None
) -> span_sinks.ProcessSinks:
    """The provider's `ProcessSinks`, started on `spec`: added at the first setup, restarted at
    the next (a processor cannot be taken out of a provider; adding one per setup kept every
    torn-down one in the provider's list)."""
    sinks = _provider_sinks.get(provider)
    if sinks is None:
        sinks = span_sinks.ProcessSinks(spec, path=path)
        provider.add_span_processor(sinks)
        _provider_sinks[provider] = sinks
    else:
        sinks.start(spec, path=path)
    return sinks


def _wire(
    service: str,
    integrations: Iterable[str] | None,
    wanted: dict[str, bool],
    logs: bool,
    unobserved: bool,
    flush_on_sigterm: bool,
    undo: list[Callable[[], object]],
) -> tuple[list[str], list[str]]:
    """Everything besides spans, each step's undo appended to `undo` as it is done."""
    previous_service = config.settings().service_name
    config.configure(service_name=service)
    undo.append(lambda: config.configure(service_name=previous_service))
    done, before = _instrument(wanted, explicit=integrations is not None, undo=undo)
    if logs:
        undo.append(wiring.wire_logging())
        structlog_undo = wiring.wire_structlog()
        if structlog_undo is not None:
            undo.append(structlog_undo)
    if unobserved:
        undo.append(wiring.wire_asyncio())
    if flush_on_sigterm and threading.current_thread() is threading.main_thread():
        shutdown.flush_on_sigterm()
        undo.append(shutdown.remove_flush_on_sigterm)
    return done, before


def _undo(
    sinks: span_sinks.ProcessSinks | None, undo: list[Callable[[], object]], timeout: float
) -> None:
    if sinks is not None:
        sinks.force_flush(int(timeout * 1000))
        sinks.shutdown()
    for step in reversed(undo):
        try:
            step()
        except Exception:
            _log.warning("tracectx.teardown: an undo step failed", exc_info=True)


def teardown(timeout: float = 5.0) -> bool:
    """Flush the spans `setup` routed (at most `timeout` seconds) and undo what it did:
    integrations it instrumented are uninstrumented, log and loop hooks removed, its span
    processors shut down. True if there was a setup to undo."""
    global _state
    with _lock:
        state, _state = _state, None
        if state is None:
            return False
        _undo(state.sinks, state.undo, timeout)
        return True


# ---- the provider ----


def _resource(service_name: str | None) -> Resource:
    # Resource.create reads OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME; an argument wins.
    return Resource.create({SERVICE_NAME: service_name} if service_name else {})


def _provider(
    service_name: str | None, sample_rate: float | None
) -> tuple[TracerProvider | None, bool]:
    """The SDK provider to add to, and whether tracectx made it."""
    global _owned_provider
    existing = trace.get_tracer_provider()
    if isinstance(existing, TracerProvider):
        if existing is not _owned_provider:
            _log.info(
                "tracectx.setup: a TracerProvider is already set; adding tracectx's span "
                "processors to it (its service.name %r and sampler stay)",
                existing.resource.attributes.get(SERVICE_NAME),
            )
        _warn_fixed(existing, service_name, sample_rate)
        return existing, existing is _owned_provider
    if not isinstance(existing, trace.ProxyTracerProvider):
        _log.warning(
            "tracectx.setup: the global TracerProvider (%s) is not the OTel SDK's; spans "
            "cannot be routed, only the integrations are set up",
            type(existing).__name__,
        )
        return None, False
    sampler = None if sample_rate is None else ParentBased(TraceIdRatioBased(sample_rate))
    provider = TracerProvider(resource=_resource(service_name), sampler=sampler)
    trace.set_tracer_provider(provider)
    if trace.get_tracer_provider() is not provider:  # lost a race with another setter
        return _provider(service_name, sample_rate)
    _owned_provider = provider
    return provider, True


def _warn_fixed(provider: TracerProvider, service_name: str | None, rate: float | None) -> None:
    have = provider.resource.attributes.get(SERVICE_NAME)
    if service_name and have != service_name:
        _log.warning(
            "tracectx.setup: service_name=%r not applied: the provider set before says %r",
            service_name,
            have,
        )
    if rate is not None:
        _log.warning("tracectx.setup: sample_rate not applied: the provider keeps its sampler")


def _exporters_env() -> set[str]:
    raw = os.environ.get("OTEL_TRACES_EXPORTER", "")
    return {part.strip().lower() for part in raw.split(",") if part.strip()}


def _otlp_url(endpoint: str | None, created: bool) -> str | None:
    """The OTLP traces URL ("" = the exporter reads the environment), or None for no OTLP."""
    if endpoint:
        base = endpoint.rstrip("/")
        return base if base.endswith("/v1/traces") else f"{base}/v1/traces"
    if not created:
        return None  # a provider set before exports what the environment asks for itself
    wanted = _exporters_env()
    if "none" in wanted:
        return None
    if "otlp" in wanted or any(
        os.environ.get(v)
        for v in ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
    ):
        return ""
    return None


# ---- integrations ----


def _wanted_integrations(names: Iterable[str] | None) -> dict[str, bool]:
    """Integration name -> explicitly asked for."""
    if names is None:
        # Entry point names, as OTel's loader reads them: "kafka" is OTel's own kafka-python
        # instrumentation, "tracectx_kafka" ours.
        disabled = {
            n.strip()
            for n in os.environ.get("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", "").split(",")
        }
        return {n: False for n in INTEGRATIONS if _PREFIX + n not in disabled}
    if isinstance(names, str):
        raise TypeError("integrations must be a list of names, not a string")
    wanted = {n.removeprefix(_PREFIX): True for n in names}
    unknown = sorted(set(wanted) - set(INTEGRATIONS))
    if unknown:
        raise ValueError(f"unknown integrations {unknown}; known: {list(INTEGRATIONS)}")
    return wanted


def _instrument(
    wanted: dict[str, bool], *, explicit: bool, undo: list[Callable[[], object]]
) -> tuple[list[str], list[str]]:
    """Instrument the wanted integrations found as entry points; returns (done, before)."""
    from opentelemetry.instrumentation.dependencies import get_dependency_conflicts

    done: list[str] = []
    before: list[str] = []
    found = {
        ep.name.removeprefix(_PREFIX): ep
        for ep in metadata.entry_points(group=_GROUP)
        if ep.name.startswith(_PREFIX) and ep.value.startswith(_PREFIX[:-1])
    }
    for name in INTEGRATIONS:
        if name not in wanted:
            continue
        ep = found.get(name)
        try:
            if ep is None:
                raise ModuleNotFoundError(f"no {_PREFIX}{name} entry point: is tracectx installed?")
            instrumentor = ep.load()()
            conflict = get_dependency_conflicts(instrumentor.instrumentation_dependencies())
            if conflict is not None:
                raise ModuleNotFoundError(f"{name}: {conflict}")
        except ImportError as exc:  # not installed, or installed but broken (a version mismatch)
            if wanted[name] and explicit:
                raise (
                    ModuleNotFoundError if isinstance(exc, ModuleNotFoundError) else ImportError
                )(f"tracectx.setup: integration {name!r} cannot be instrumented: {exc}") from exc
            level = logging.DEBUG if isinstance(exc, ModuleNotFoundError) else logging.INFO
            _log.log(level, "tracectx.setup: skipping integration %s (%s)", name, exc)
            continue
        if instrumentor.is_instrumented_by_opentelemetry:
            before.append(name)
            continue
        instrumentor.instrument()
        undo.append(instrumentor.uninstrument)
        done.append(name)
    return done, before
