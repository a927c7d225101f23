"""`spoton serve` as a user runs it: on the configured ports and bind host, endpoints in the
stack file once healthy, the environment registered, SIGTERM stops everything and removes the
file; and a taken port stops it at once with a message naming the setting.

The ports are set through SPOTON_FACADE_PORT / SPOTON_GRPC_PORT to free ones, so the test
never collides with a developer's own stack on the defaults (8080 and 50051)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

from spoton_inference.embedded.pids import pid_alive
from spoton_inference.embedded.ports import pick_free_ports, port_is_free
from spoton_inference.embedded.probes import tcp_accepts
from spoton_inference.scenes.config import demo_config
from spoton_inference.scenes.generate import generate

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]
ENDPOINT_KEYS = {"facade_url", "grpc_target", "triton_grpc_url", "triton_http_url", "postgres_dsn", "redis_url"}
# Loopback, but not where a server bound to 127.0.0.1 alone answers: only a 0.0.0.0 bind does.
OTHER_LOOPBACK = "127.0.0.2"


def _serve(work, *args: str, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "spoton_client.cli", "serve", *args],
        env={**os.environ, "SPOTON_DATA_DIR": str(work / "data"), **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_serve_listens_where_configured_and_stops_cleanly_on_sigterm(make_data_dir):
    work = make_data_dir("serve")
    env_dir = generate(dataclasses.replace(demo_config(seed=5), frames_per_batch=10, n_people=2), work / "env")
    stack_file = work / "stack.json"
    grpc_port, facade_port = pick_free_ports(2)
    listen = {"SPOTON_BIND_HOST": "0.0.0.0", "SPOTON_GRPC_PORT": str(grpc_port), "SPOTON_FACADE_PORT": str(facade_port)}
    proc = _serve(work, "--env-dir", str(env_dir), "--stack-file", str(stack_file), **listen)
    try:
        deadline = time.monotonic() + 300
        while not stack_file.exists():
            assert proc.poll() is None, proc.stdout.read()
            assert time.monotonic() < deadline, "the stack never became healthy"
            time.sleep(0.5)
        endpoints = json.loads(stack_file.read_text())["endpoints"]
        assert set(endpoints) == ENDPOINT_KEYS
        # The configured ports, at an address a client can call although the bind is 0.0.0.0.
        assert endpoints["facade_url"] == f"http://127.0.0.1:{facade_port}"
        assert endpoints["grpc_target"] == f"127.0.0.1:{grpc_port}"
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
        # Both public servers listen on every interface; the internal ones stay on loopback.
        assert httpx.get(f"http://{OTHER_LOOPBACK}:{facade_port}/health", timeout=10).status_code == 200
        assert asyncio.run(tcp_accepts(OTHER_LOOPBACK, grpc_port))
        internal = [endpoints[k] for k in ("triton_grpc_url", "triton_http_url", "postgres_dsn", "redis_url")]
        assert all("127.0.0.1:" in url for url in internal)
        assert not asyncio.run(tcp_accepts(OTHER_LOOPBACK, int(endpoints["triton_grpc_url"].rsplit(":", 1)[1])))
        ports = [int(v.rsplit(":", 1)[1].split("/")[0]) for k, v in endpoints.items() if k != "postgres_dsn"]
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, output
    assert f"admin API key in {key_file}" in output  # how to authenticate, printed by serve
    assert f"dashboard  http://127.0.0.1:{facade_port}/" in output
    assert "listening  on 0.0.0.0" in output
    assert not stack_file.exists()
    assert all(port_is_free(p) for p in ports)
    assert not pid_alive(proc.pid)


def test_a_taken_port_stops_serve_before_anything_starts_naming_the_setting(make_data_dir):
    work = make_data_dir("serve-taken")
    (grpc_port,) = pick_free_ports(1)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        ports = {"SPOTON_FACADE_PORT": str(taken), "SPOTON_GRPC_PORT": str(grpc_port)}
        # An environment of its own: were the check to pass, nothing lands in var/demo.
        proc = _serve(work, "--env-dir", str(work / "env"), "--stack-file", str(work / "stack.json"), **ports)
        try:
            output, _ = proc.communicate(timeout=120)
        finally:
            # Never left running: once the port is let go it would start a whole stack.
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert proc.returncode == 1, output
    # One line, no traceback: what is wrong and which setting to change.
    assert output.strip().splitlines() == [
        f"spoton serve: port {taken} on 127.0.0.1 is already in use, so the facade cannot listen there: "
        "stop what uses it, or set SPOTON_FACADE_PORT to a free port"
    ]
    assert not (work / "stack.json").exists()
    assert not (work / "data").exists()  # nothing was started, nor set up
