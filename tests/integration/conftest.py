"""A real LocalStack for the integration tests: started by the test session, stopped after it.

LocalStack runs as a host process from its own Python 3.13 virtualenv (``make install`` builds it at
``.localstack-venv``; ``MLOPS_LOCALSTACK_PYTHON`` points elsewhere). If one is already answering on
the port (a developer's), it is used and left running.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
PORT = int(os.environ.get("MLOPS_LOCALSTACK_PORT", "4566"))
ENDPOINT = f"http://{HOST}:{PORT}"
REGION = "us-east-1"
READY_TIMEOUT_S = 120


def _healthy() -> bool:
    try:
        with urllib.request.urlopen(f"{ENDPOINT}/_localstack/health", timeout=2) as resp:
            services = json.load(resp).get("services", {})
            return services.get("s3") in ("available", "running")
    except OSError:
        return False


@pytest.fixture(scope="session")
def localstack_python() -> Path:
    """The interpreter of LocalStack's virtualenv (``MLOPS_LOCALSTACK_PYTHON`` or ``.localstack-venv``)."""
    python = Path(os.environ.get("MLOPS_LOCALSTACK_PYTHON", ROOT / ".localstack-venv" / "bin" / "python"))
    if not python.exists():
        pytest.fail(f"LocalStack's virtualenv is missing ({python}); run `make install` first", pytrace=False)
    return python


@pytest.fixture(scope="session")
def localstack(tmp_path_factory, localstack_python):
    """The LocalStack endpoint URL; starts the process unless one already runs."""
    if _healthy():
        yield ENDPOINT
        return
    python = localstack_python
    workdir = tmp_path_factory.mktemp("localstack")
    env = {
        **os.environ,
        "GATEWAY_LISTEN": f"{HOST}:{PORT}",
        "LOCALSTACK_VOLUME_DIR": str(workdir / "volume"),
        "TMPDIR": str(workdir),
        "SKIP_SSL_CERT_DOWNLOAD": "1",
        "DISABLE_EVENTS": "1",
        # Its virtualenv is installed without bytecode (Makefile): the first start writes what it imports.
        "PYTHONDONTWRITEBYTECODE": "",
    }
    mock_config = os.environ.get("SFN_MOCK_CONFIG") or _sfn_mock_config()
    if mock_config:
        env["SFN_MOCK_CONFIG"] = mock_config
    log = (workdir / "localstack.log").open("w")
    proc = subprocess.Popen(
        [str(python), "-m", "localstack.runtime.main"], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not _healthy():
        if proc.poll() is not None or time.monotonic() > deadline:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            tail = (workdir / "localstack.log").read_text()[-3000:]
            pytest.fail(f"LocalStack did not become ready on {ENDPOINT}:\n{tail}", pytrace=False)
        time.sleep(0.5)
    try:
        yield ENDPOINT
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def _sfn_mock_config() -> str | None:
    """The shipped Step Functions mock config, when the project has one (the CT flow's scenarios)."""
    path = ROOT / "tests" / "integration" / "sfn_mock_config.json"
    return str(path) if path.exists() else None


@pytest.fixture(scope="session")
def aws_client(localstack):
    def make(service: str):
        return boto3.client(
            service,
            endpoint_url=localstack,
            region_name=REGION,
            aws_access_key_id="test",
            aws_secret_access_key="test",
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3, "mode": "standard"}),
        )

    return make


@pytest.fixture
def stack_buckets(aws_client):
    """``stack_buckets(stack, *roles)``: fresh ``mlops-<stack>-<role>`` buckets, emptied and deleted after the test."""
    made: list[str] = []
    s3 = aws_client("s3")

    def make(stack: str, *roles: str) -> dict[str, str]:
        names = {role: f"mlops-{stack}-{role}" for role in roles}
        for name in names.values():
            s3.create_bucket(Bucket=name)
            made.append(name)
        return names

    yield make
    for name in made:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):
            for obj in page.get("Contents", []):
                s3.delete_object(Bucket=name, Key=obj["Key"])
        s3.delete_bucket(Bucket=name)
