"""`spoton serve` as a user runs it: endpoints in the stack file once healthy, the
environment registered, and SIGTERM stops everything and removes the file."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from spoton_inference.embedded.pids import pid_alive
from spoton_inference.embedded.ports import port_is_free
from spoton_inference.scenes.config import demo_config
from spoton_inference.scenes.generate import generate

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]
ENDPOINT_KEYS = {"facade_url", "grpc_target", "triton_grpc_url", "triton_http_url", "postgres_dsn", "redis_url"}


def test_serve_publishes_endpoints_and_stops_cleanly_on_sigterm(make_data_dir):
    work = make_data_dir("serve")
    env_dir = generate(dataclasses.replace(demo_config(seed=5), frames_per_batch=10, n_people=2), work / "env")
    stack_file = work / "stack.json"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "spoton_client.cli",
            "serve",
            "--env-dir",
            str(env_dir),
            "--stack-file",
            str(stack_file),
        ],
        env={**os.environ, "SPOTON_DATA_DIR": str(work / "data")},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 300
        while not stack_file.exists():
            assert proc.poll() is None, proc.stdout.read()
            assert time.monotonic() < deadline, "the stack never became healthy"
            time.sleep(0.5)
        endpoints = json.loads(stack_file.read_text())["endpoints"]
        assert set(endpoints) == ENDPOINT_KEYS
        facade = endpoints["facade_url"]
        # Out of the box: the first start created an admin key, owner-only, for the local tools.
        key_file = work / "data" / "secrets" / "admin_api_key"
        assert key_file.stat().st_mode & 0o077 == 0
        headers = {"Authorization": f"Bearer {key_file.read_text().strip()}"}

        deadline = time.monotonic() + 60
        while True:  # registration follows the stack file by a moment
            envs = httpx.get(f"{facade}/api/v1/environments", headers=headers, timeout=10).json()
            if any(e["environment_id"] == "synthetic-hall" for e in envs["environments"]):
                break
            assert time.monotonic() < deadline, envs
            time.sleep(0.5)
        assert httpx.get(f"{facade}/health", timeout=10).json()["status"] == "healthy"
        ports = [int(v.rsplit(":", 1)[1].split("/")[0]) for k, v in endpoints.items() if k != "postgres_dsn"]
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, output
    assert f"admin API key in {key_file}" in output  # how to authenticate, printed by serve
    assert not stack_file.exists()
    assert all(port_is_free(p) for p in ports)
    assert not pid_alive(proc.pid)
