"""`tracectx.setup()` / `tracectx.teardown()`: real SDK, real files, real forks and subprocesses."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
import structlog
from opentelemetry import trace

import tracectx
from tracectx import bootstrap
from tracectx.viz.sources import load_spans

ROOT = Path(__file__).resolve().parents[2]


def run_app(
    code: str, cwd: Path, timeout: float = 60, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run `code` in a fresh interpreter (its own global provider), in `cwd`."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "TRACECTX_"))}
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=cwd,
        env={**clean, "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def spans_in(*paths: Path) -> list:
    return load_spans(sorted(paths)).spans


@pytest.fixture
def torn_down() -> Iterator[None]:
    """Whatever a test sets up is undone, even when it fails."""
    yield
    tracectx.teardown()


class TestNewProvider:
    def test_spans_file_gets_the_service_spans(self, tmp_path: Path):
        """One call: a provider named after the service, its spans in the file for `graph`."""
        out = run_app(
            """
            import tracectx
            s = tracectx.setup("checkout", spans_file="spans/{service}.otlp.jsonl")
            print(s.created_provider, s.spans_file)
            with tracectx.traced("POST /pay"):
                pass
            """,
            tmp_path,
        )
        assert out.stdout.split() == ["True", "spans/checkout.otlp.jsonl"]
        (span,) = spans_in(tmp_path / "spans" / "checkout.otlp.jsonl")
        assert (span.name, span.service) == ("POST /pay", "checkout")

    def test_follows_otel_environment(self, tmp_path: Path):
        """OTEL_SERVICE_NAME names the service; OTEL_TRACES_SAMPLER=always_off keeps nothing,
        and TRACECTX_SPANS_FILE says where spans go."""
        code = """
            import tracectx
            print(tracectx.setup().service_name)
            with tracectx.traced("kept?"):
                pass
            """
        out = run_app(code, tmp_path, OTEL_SERVICE_NAME="billing", TRACECTX_SPANS_FILE="a.jsonl")
        assert out.stdout.strip() == "billing"
        assert [s.service for s in spans_in(tmp_path / "a.jsonl")] == ["billing"]
        run_app(code, tmp_path, OTEL_TRACES_SAMPLER="always_off", TRACECTX_SPANS_FILE="b.jsonl")
        assert not (tmp_path / "b.jsonl").exists()

    def test_otel_traces_exporter_console_and_none(self, tmp_path: Path):
        code = """
            import tracectx
            print(tracectx.setup("svc").otlp)
            with tracectx.traced("printed"):
                pass
            tracectx.teardown()
            """
        out = run_app(code, tmp_path, OTEL_TRACES_EXPORTER="console")
        assert out.stdout.startswith("False") and '"name": "printed"' in out.stdout
        out = run_app(
            code, tmp_path, OTEL_TRACES_EXPORTER="none", OTEL_EXPORTER_OTLP_ENDPOINT="http://x:1"
        )
        assert out.stdout.split() == ["False"]

    def test_sample_rate_zero_keeps_no_new_trace(self, tmp_path: Path):
        run_app(
            """
            import tracectx
            tracectx.setup("s", spans_file="s.jsonl", sample_rate=0.0)
            with tracectx.traced("dropped"):
                pass
            """,
            tmp_path,
        )
        assert not (tmp_path / "s.jsonl").exists()

    def test_set_up_again_after_teardown_reuses_its_provider(self, tmp_path: Path):
        """OTel lets a process set its provider once: a second setup adds to the first's."""
        out = run_app(
            """
            import tracectx
            first = tracectx.setup("svc", spans_file="a.jsonl")
            with tracectx.traced("first"):
                pass
            tracectx.teardown()
            with tracectx.traced("between"):
                pass
            second = tracectx.setup("svc", spans_file="b.jsonl")
            with tracectx.traced("second"):
                pass
            print(second.provider is first.provider, second.created_provider)
            """,
            tmp_path,
        )
        assert out.stdout.split() == ["True", "True"]
        assert [s.name for s in spans_in(tmp_path / "a.jsonl")] == ["first"]
        assert [s.name for s in spans_in(tmp_path / "b.jsonl")] == ["second"]

    def test_forked_children_write_their_own_files(self, tmp_path: Path):
        """multiprocessing children and process-pool workers (fork) write `<name>-<pid>` files
        with no user code, in the parent's trace; the parent's file holds only its own spans."""
        run_app(
            """
            import multiprocessing, os
            from concurrent.futures import ProcessPoolExecutor
            import tracectx

            def work(n):
                with tracectx.traced(f"child {n}"):
                    return os.getpid()

            tracectx.setup("jobs", spans_file="spans/jobs.otlp.jsonl")
            fork = multiprocessing.get_context("fork")
            with tracectx.traced("parent"):
                p = fork.Process(target=work, args=(0,))
                p.start()
                p.join()
                with ProcessPoolExecutor(2, mp_context=fork) as pool:
                    print(sorted(set(pool.map(work, [1, 2, 3]))))
            """,
            tmp_path,
        )
        files = sorted((tmp_path / "spans").iterdir())
        parent = tmp_path / "spans" / "jobs.otlp.jsonl"
        assert [s.name for s in spans_in(parent)] == ["parent"]
        children = [f for f in files if f != parent]
        assert children and all(f.name.startswith("jobs-") for f in children)
        spans = spans_in(*files)
        assert {s.name for s in spans} == {"parent", "child 0", "child 1", "child 2", "child 3"}
        assert len({s.trace_id for s in spans}) == 1

    def test_processes_sharing_one_file_append_whole_lines(self, tmp_path: Path):
        """Two services started apart (as `uvicorn --workers` starts them) with one spans file:
        every line stays whole JSON, big batches included."""
        code = textwrap.dedent(
            """
            import sys, tracectx
            tracectx.setup("svc", spans_file="shared.jsonl", integrations=[])
            for i in range(300):
                with tracectx.traced(f"{sys.argv[1]} {i}") as span:
                    span.set_attribute("padding", "x" * 2000)
            """
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "TRACECTX_"))}
        env = {**env, "PYTHONPATH": str(ROOT), "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "64"}
        procs = [
            subprocess.Popen([sys.executable, "-c", code, name], cwd=tmp_path, env=env)
            for name in ("a", "b")
        ]
        assert [p.wait(60) for p in procs] == [0, 0]
        lines = (tmp_path / "shared.jsonl").read_text().splitlines()
        names = [
            span["name"]
            for line in lines
            for rs in json.loads(line)["resourceSpans"]
            for ss in rs["scopeSpans"]
            for span in ss["spans"]
        ]
        assert sorted(names) == sorted(f"{n} {i}" for n in "ab" for i in range(300))

    def test_sigterm_flushes_batched_spans(self, tmp_path: Path):
        """A service killed with SIGTERM still leaves its spans (batched for an hour here)."""
        code = """
            import time, tracectx
            tracectx.setup("svc", spans_file="s.jsonl")
            with tracectx.traced("before the kill"):
                pass
            print("ready", flush=True)
            time.sleep(60)
            """
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "TRACECTX_"))}
        proc = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(code)],
            cwd=tmp_path,
            env={**env, "PYTHONPATH": str(ROOT), "OTEL_BSP_SCHEDULE_DELAY": "3600000"},
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready"
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(30) == -signal.SIGTERM
        finally:
            proc.kill()
            proc.wait()
        assert [s.name for s in spans_in(tmp_path / "s.jsonl")] == ["before the kill"]

    def test_unretrieved_task_failure_is_logged_with_its_trace(self, tmp_path: Path):
        out = run_app(
            """
            import asyncio, gc, logging, tracectx
            logging.basicConfig(format="%(name)s %(trace_id)s %(message)s")
            tracectx.setup("svc", spans_file="s.jsonl", integrations=[])

            async def fail():
                raise ValueError("nobody looks")

            async def main():
                with tracectx.traced("request") as span:
                    print(format(span.get_span_context().trace_id, "032x"), flush=True)
                    asyncio.get_running_loop().create_task(fail())
                    await asyncio.sleep(0.05)
                gc.collect()
                await asyncio.sleep(0.05)

            asyncio.run(main())
            """,
            tmp_path,
        )
        trace_id = out.stdout.split()[0]
        assert "unobserved error in task" in out.stderr
        assert f"trace_id={trace_id}" in out.stderr


class _Collector(BaseHTTPRequestHandler):
    """An OTLP/HTTP receiver: counts the spans POSTed to /v1/traces."""

    received: ClassVar[list[tuple[str, str]]] = []

    def do_POST(self) -> None:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
        )

        body = self.rfile.read(int(self.headers["Content-Length"]))
        request = ExportTraceServiceRequest.FromString(body)
        for rs in request.resource_spans:
            service = next(
                a.value.string_value for a in rs.resource.attributes if a.key == "service.name"
            )
            for ss in rs.scope_spans:
                self.received.extend((self.path, f"{service}:{s.name}") for s in ss.spans)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[tuple[str, list[tuple[str, str]]]]:
    received: list[tuple[str, str]] = []
    handler = type("Handler", (_Collector,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", received
    server.shutdown()
    server.server_close()


class TestOtlp:
    def test_otlp_endpoint_argument(self, tmp_path: Path, collector):
        url, received = collector
        run_app(
            f"""
            import tracectx
            assert tracectx.setup("api", otlp_endpoint="{url}").otlp
            with tracectx.traced("GET /"):
                pass
            tracectx.teardown()
            """,
            tmp_path,
        )
        assert received == [("/v1/traces", "api:GET /")]

    def test_otlp_from_environment_in_parent_and_forked_child(self, tmp_path: Path, collector):
        url, received = collector
        run_app(
            """
            import multiprocessing, tracectx
            tracectx.setup("api")
            def child():
                with tracectx.traced("child"):
                    pass
            with tracectx.traced("parent"):
                p = multiprocessing.get_context("fork").Process(target=child)
                p.start()
                p.join()
            """,
            tmp_path,
            OTEL_EXPORTER_OTLP_ENDPOINT=url,
        )
        assert sorted(received) == [("/v1/traces", "api:child"), ("/v1/traces", "api:parent")]


class TestExistingProvider:
    def test_adds_to_the_provider_set_before_and_says_so(
        self, tmp_path: Path, spans, caplog, torn_down
    ):
        """The app's provider keeps its exporters; tracectx's file is added, and a log says so."""
        before = trace.get_tracer_provider()
        with caplog.at_level(logging.INFO, logger="tracectx.setup"):
            result = tracectx.setup("ignored", spans_file=tmp_path / "s.jsonl", integrations=[])
        assert trace.get_tracer_provider() is before
        assert result.provider is before and not result.created_provider
        assert "already set; adding tracectx's span processors" in caplog.text
        assert "service_name='ignored' not applied" in caplog.text
        with tracectx.traced("both"):
            pass
        tracectx.teardown()
        assert [s.name for s in spans.get_finished_spans()] == ["both"]
        assert [s.name for s in spans_in(tmp_path / "s.jsonl")] == ["both"]

    def test_same_arguments_twice_is_one_setup(self, tmp_path: Path, torn_down):
        first = tracectx.setup(spans_file=tmp_path / "s.jsonl", integrations=["threading"])
        assert tracectx.setup(spans_file=tmp_path / "s.jsonl", integrations=["threading"]) is first
        with tracectx.traced("once"):
            pass
        tracectx.teardown()
        assert [s.name for s in spans_in(tmp_path / "s.jsonl")] == ["once"]

    def test_other_arguments_set_up_anew(self, tmp_path: Path, torn_down):
        tracectx.setup(spans_file=tmp_path / "a.jsonl", integrations=[])
        tracectx.setup(spans_file=tmp_path / "b.jsonl", integrations=[])
        with tracectx.traced("second"):
            pass
        tracectx.teardown()
        assert not (tmp_path / "a.jsonl").exists()
        assert [s.name for s in spans_in(tmp_path / "b.jsonl")] == ["second"]

    def test_teardown_undoes_everything(self, tmp_path: Path, torn_down):
        import asyncio

        from tracectx import hooks

        make_record = vars(logging.Logger)["makeRecord"]
        loop_init = vars(asyncio.BaseEventLoop)["__init__"]
        was_instrumented = hooks.is_instrumented()
        result = tracectx.setup("svc", spans_file=tmp_path / "s.jsonl", integrations=["threading"])
        assert result.integrations == (() if was_instrumented else ("threading",))
        assert vars(logging.Logger)["makeRecord"] is not make_record
        record = logging.getLogger("x").makeRecord("x", logging.INFO, "f", 1, "m", (), None)
        assert record.trace_id == "-"  # type: ignore[attr-defined]
        assert tracectx.teardown() is True
        assert tracectx.teardown() is False
        assert vars(logging.Logger)["makeRecord"] is make_record
        assert vars(asyncio.BaseEventLoop)["__init__"] is loop_init
        assert hooks.is_instrumented() is was_instrumented
        assert signal.getsignal(signal.SIGTERM) is not None
        assert bootstrap.current() is None
        assert trace.get_tracer_provider().force_flush() is True  # type: ignore[attr-defined]

    def test_log_records_carry_the_trace(self, torn_down):
        tracectx.setup(integrations=[])
        with tracectx.traced("op") as span:
            record = logging.getLogger("x").makeRecord("x", logging.INFO, "f", 1, "m", (), None)
        assert record.trace_id == format(span.get_span_context().trace_id, "032x")  # type: ignore[attr-defined]

    def test_structlog_processors_go_before_the_renderer_and_come_out(self, torn_down):
        renderer = structlog.processors.JSONRenderer()
        structlog.configure(processors=[structlog.processors.add_log_level, renderer])
        try:
            tracectx.setup(integrations=[])
            names = [
                getattr(p, "__name__", type(p).__name__)
                for p in structlog.get_config()["processors"]
            ]
            assert names == [
                "add_log_level",
                "add_trace_ids",
                "add_bound_metadata",
                "add_error_fields",
                "JSONRenderer",
            ]
            tracectx.teardown()
            assert structlog.get_config()["processors"] == [
                structlog.processors.add_log_level,
                renderer,
            ]
        finally:
            structlog.reset_defaults()

    def test_unknown_integration_is_refused(self):
        with pytest.raises(ValueError, match="unknown integrations \\['flask'\\]"):
            tracectx.setup(integrations=["flask"])
        assert bootstrap.current() is None


def test_a_library_that_is_not_installed(tmp_path: Path):
    """Named explicitly, a missing library fails setup (and leaves nothing behind); by
    default its integration is skipped."""
    out = run_app(
        """
        import sys
        sys.modules["celery"] = None  # as if Celery were not installed
        import tracectx
        from tracectx import bootstrap, hooks
        try:
            tracectx.setup("svc", spans_file="a.jsonl", integrations=["threading", "celery"])
        except ModuleNotFoundError as exc:
            print("refused:", "tracectx[celery]" in str(exc))
        print("left:", bootstrap.current(), hooks.is_instrumented())
        with tracectx.traced("nowhere"):
            pass
        print("default:", tracectx.setup("svc", spans_file="b.jsonl").integrations)
        """,
        tmp_path,
    )
    lines = out.stdout.splitlines()
    assert lines[:2] == ["refused: True", "left: None False"], out
    assert "'threading'" in lines[2] and "celery" not in lines[2], out
    assert not (tmp_path / "a.jsonl").exists()


def test_a_library_that_cannot_be_imported_is_skipped_unless_asked_for(tmp_path: Path):
    """A library that is installed but breaks the integration's import (ImportError, not
    ModuleNotFoundError: "cannot import name", a version mismatch) is skipped and logged by
    default, and fails setup only when named."""
    out = run_app(
        """
        import logging, sys, types
        logging.basicConfig(level=logging.INFO, format="%(message)s")
        sys.modules["celery"] = types.ModuleType("celery")  # no `signals`: a broken Celery
        import tracectx
        print("default:", tracectx.setup("svc", spans_file="b.jsonl").integrations)
        tracectx.teardown()
        try:
            tracectx.setup("svc", spans_file="a.jsonl", integrations=["celery"])
        except ImportError as exc:
            print("refused:", "'celery' cannot be instrumented" in str(exc))
        """,
        tmp_path,
    )
    lines = out.stdout.splitlines()
    assert "'threading'" in lines[0] and "celery" not in lines[0], out
    assert lines[1:] == ["refused: True"], out
    assert "skipping integration celery (cannot import name 'signals'" in out.stderr, out


def test_under_opentelemetry_instrument(tmp_path: Path):
    """`opentelemetry-instrument` has already instrumented tracectx's integrations: setup keeps
    them and still routes spans."""
    app = tmp_path / "app.py"
    app.write_text(
        textwrap.dedent(
            """
            import json, tracectx
            s = tracectx.setup("svc", spans_file="s.jsonl")
            print(json.dumps({"done": s.integrations, "before": s.already_instrumented}))
            with tracectx.traced("op"):
                pass
            """
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "TRACECTX_"))}
    proc = subprocess.run(
        [str(Path(sys.executable).with_name("opentelemetry-instrument")), sys.executable, str(app)],
        cwd=tmp_path,
        env={
            **env,
            "PYTHONPATH": str(ROOT),
            "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "threading,celery,kafka,kafka-python",
            "OTEL_TRACES_EXPORTER": "none",
            "OTEL_METRICS_EXPORTER": "none",
            "OTEL_LOGS_EXPORTER": "none",
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "threading" in report["before"] and "threading" not in report["done"]
    assert [s.name for s in spans_in(tmp_path / "s.jsonl")] == ["op"]


def test_spans_written_by_a_process_that_exits_normally(tmp_path: Path):
    """No teardown call: the SDK's exit hook flushes the batch (the file is complete)."""
    run_app(
        """
        import tracectx
        tracectx.setup("svc", spans_file="s.jsonl", integrations=[])
        for i in range(50):
            with tracectx.traced(f"op {i}"):
                pass
        """,
        Path(os.fspath(tmp_path)),
    )
    lines = (tmp_path / "s.jsonl").read_text().splitlines()
    assert (
        sum(len(json.loads(x)["resourceSpans"][0]["scopeSpans"][0]["spans"]) for x in lines) == 50
    )
