"""Health tells the truth: healthy with every part up, and a crashed Triton is reported by
the stack, by the detailed health (degraded, naming the part) and by Detect (UNAVAILABLE)."""

from __future__ import annotations

import asyncio
import os
import signal

import grpc
import httpx
import numpy as np
import pytest
import pytest_asyncio

from spoton.v1 import inference_pb2, inference_pb2_grpc
from spoton_client.client import SpotOnClient
from spoton_inference.embedded.supervisor import ChildState
from spoton_inference.launch import full_stack
from spoton_inference.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]


@pytest_asyncio.fixture(scope="module")
async def stack(make_data_dir):
    async with full_stack(Settings(data_dir=make_data_dir("health"))) as running:
        yield running


async def test_everything_up_is_healthy_with_detail_per_component(stack):
    async with SpotOnClient(stack.endpoints.grpc_target) as client:
        health = await client.health()
    components = {c.name: c.status for c in health.components}
    assert health.status == "healthy", health
    assert set(components) >= {"triton", "model:detector", "model:reid", "postgres", "redis", "homography_cache"}
    assert set(components.values()) == {"healthy"}
    async with httpx.AsyncClient() as http:
        reply = await http.get(f"{stack.endpoints.facade_url}/health")
    assert reply.status_code == 200 and reply.json()["status"] == "healthy"


async def test_a_crashed_triton_is_reported_everywhere(stack):
    os.kill(stack.triton.pid, signal.SIGKILL)
    for _ in range(100):
        if stack.triton.status().state is ChildState.FAILED:
            break
        await asyncio.sleep(0.1)
    status = stack.triton.status()
    assert status.state is ChildState.FAILED and "SIGKILL" in (status.reason or "")

    async with SpotOnClient(stack.endpoints.grpc_target) as client:
        health = await client.health()
    components = {c.name: c.status for c in health.components}
    assert health.status == "degraded"
    assert components["triton"] == "failed" and components["postgres"] == "healthy"

    async with grpc.aio.insecure_channel(stack.endpoints.grpc_target) as channel:
        detect = inference_pb2_grpc.InferenceServiceStub(channel).Detect
        frame = np.zeros((48, 64, 3), np.uint8)
        request = inference_pb2.DetectRequest(raw=inference_pb2.RawImage(data=frame.tobytes(), width=64, height=48))
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await detect(request, timeout=30)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "Triton" in err.value.details()
