"""The health part's ceiling and its CPU figure: the bare grpc.aio server answers the standard
health check, is found by its port, and a server's CPU time is counted per call."""

from __future__ import annotations

import subprocess
import sys
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from serving_lib import bare_grpc, process_cpu

from spoton_inference.embedded.ports import pick_free_ports

BUSY_S = 0.3


async def test_the_bare_server_answers_serving_and_is_found_by_its_port():
    port = pick_free_ports(1)[0]
    async with bare_grpc.serving(port) as target:
        pid = process_cpu.listening_pid(port)
        async with grpc.aio.insecure_channel(target) as channel:
            reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    assert pid > 0
    with pytest.raises(LookupError):
        process_cpu.listening_pid(port)  # stopped with the block


def test_cpu_time_counts_what_the_process_spent_not_the_wall_time():
    spin = f"import time\nend = time.process_time() + {BUSY_S}\nwhile time.process_time() < end: pass\n"
    busy = spin + "print('spun', flush=True)\ninput()"
    child = subprocess.Popen([sys.executable, "-c", busy], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        with process_cpu.measured(child.pid) as spinning:
            assert child.stdout is not None and child.stdout.readline() == "spun\n"
        with process_cpu.measured(child.pid) as waiting:
            time.sleep(0.3)  # blocked on stdin: no CPU
    finally:
        child.communicate("\n", timeout=10)
    assert spinning.seconds >= BUSY_S * 0.9
    assert waiting.seconds < 0.05
    assert spinning.us_per_call(3) == pytest.approx(spinning.seconds * 1e6 / 3)


def test_a_process_tree_counts_its_live_descendants():
    """Triton's model backends run as its children: their CPU is the server's too."""
    # The grandchild shares the child's stdin and stdout (ours): it spins only once told to,
    # inside the measured block, and stays alive until told to end.
    spin = f"end = time.process_time() + {BUSY_S}\nwhile time.process_time() < end: pass\n"
    grandchild = "import time\ninput()\n" + spin + "print('spun', flush=True)\ninput()"
    parent = f"import subprocess, sys\nsubprocess.run([sys.executable, '-c', {grandchild!r}])\n"
    child = subprocess.Popen([sys.executable, "-c", parent], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert child.stdin is not None and child.stdout is not None
    try:
        with process_cpu.measured(child.pid) as alone, process_cpu.measured(child.pid, tree=True) as tree:
            child.stdin.write("go\n")
            child.stdin.flush()
            assert child.stdout.readline() == "spun\n"
    finally:
        child.communicate("\n", timeout=10)
    assert tree.seconds >= BUSY_S * 0.9 > alone.seconds
