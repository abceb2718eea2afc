"""The HTTP API fuzzed from its own OpenAPI description (schemathesis), against the real service
process and a real PostgreSQL: never a 5xx, always the documented shapes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from pagos_worker.entrypoints.openapi import openapi
from tests.conftest import free_port

pytestmark = pytest.mark.integration
schema = schemathesis.openapi.from_dict(openapi())


@pytest.fixture(scope="module")
def api_url(database_url, pulsar_url, tmp_path_factory) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "PAGOS_DATABASE_URL": database_url, "PAGOS_PULSAR_URL": pulsar_url,
           "PAGOS_HTTP_PORT": str(port), "PAGOS_PASARELA": "simulada"}  # fmt: skip
    log_path = tmp_path_factory.mktemp("api") / "api.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "pagos_worker", "run", "--roles", "api", "--no-migrate"],
            env=env,
            stdout=log,
            stderr=log,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{url}/healthz", timeout=1)  # noqa: S310 - local test server
                break
            except OSError:
                assert process.poll() is None, log_path.read_text()
                assert time.monotonic() < deadline, log_path.read_text()
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(10)
    assert "Traceback" not in log_path.read_text()


@schema.parametrize()
@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
def test_la_api_nunca_responde_5xx(case, api_url):
    case.call_and_validate(base_url=api_url)
