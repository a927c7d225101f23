"""A Triton reply that breaks the model contract reads as Triton unavailable, never as a crash.

Seen on CI: a Triton frozen (SIGSTOP) and let go answered a Detect with outputs whose raw bytes
did not fill their declared shape; tritonclient's reshape raised ValueError, and the RPC ended
INTERNAL instead of UNAVAILABLE, which the task's outage wait would have ridden out. A real
Triton cannot be made to answer that on purpose, so these replies come from a gRPC server that
speaks Triton's protocol (tritonclient's own service definition) and answers each inference
with the reply under test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import numpy as np
import pytest
import pytest_asyncio
from tritonclient.grpc import service_pb2, service_pb2_grpc

from spoton_inference.domain.errors import Unavailable
from spoton_inference.pipeline.triton_models import TritonModels

pytestmark = pytest.mark.timeout(60)


class _Replies(service_pb2_grpc.GRPCInferenceServiceServicer):
    """Answers every ModelInfer with ``reply``, as a failing backend would."""

    def __init__(self) -> None:
        self.reply = service_pb2.ModelInferResponse()

    async def ModelInfer(self, request, context):  # noqa: N802 (the protocol's name)
        return self.reply


def _output(name: str, shape: list[int], raw: bytes) -> tuple[service_pb2.ModelInferResponse.InferOutputTensor, bytes]:
    return service_pb2.ModelInferResponse.InferOutputTensor(name=name, datatype="FP32", shape=shape), raw


def _reply(*outputs: tuple[service_pb2.ModelInferResponse.InferOutputTensor, bytes]) -> service_pb2.ModelInferResponse:
    reply = service_pb2.ModelInferResponse(model_name="m")
    for tensor, raw in outputs:
        reply.outputs.append(tensor)
        reply.raw_output_contents.append(raw)
    return reply


@pytest_asyncio.fixture
async def triton() -> AsyncIterator[tuple[_Replies, TritonModels]]:
    replies = _Replies()
    server = grpc.aio.server()
    service_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(replies, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    models = TritonModels(f"127.0.0.1:{port}", "detector", "reid", timeout_s=5, shared_memory="off")
    try:
        yield replies, models
    finally:
        await models.close()
        await server.stop(None)


FRAME = np.zeros((48, 64, 3), np.uint8)
CROPS = np.zeros((3, 256, 128, 3), np.uint8)


async def test_a_well_formed_reply_gives_detections(triton):
    replies, models = triton
    boxes = np.array([[1, 2, 3, 4], [5, 6, 7, 8]], np.float32)
    scores = np.array([0.9, 0.8], np.float32)
    replies.reply = _reply(_output("BOXES", [2, 4], boxes.tobytes()), _output("SCORES", [2], scores.tobytes()))
    found = await models.detect(FRAME, 0.5)
    np.testing.assert_array_equal(found.boxes, boxes)
    np.testing.assert_array_equal(found.scores, scores)


@pytest.mark.parametrize(
    ("outputs", "words"),
    [
        # The CI case: eight boxes declared, no bytes sent.
        ((_output("BOXES", [8, 4], b""), _output("SCORES", [8], b"")), "malformed BOXES output"),
        ((_output("SCORES", [0], b""),), "without its BOXES output"),
        # Two boxes and three scores: no detection can be paired with its score.
        (
            (_output("BOXES", [2, 4], np.zeros(8, np.float32).tobytes()), _output("SCORES", [3], bytes(12))),
            "malformed SCORES output",
        ),
    ],
    ids=["short-bytes", "missing-output", "boxes-and-scores-disagree"],
)
async def test_a_detector_reply_that_breaks_the_contract_reads_as_triton_unavailable(triton, outputs, words):
    replies, models = triton
    replies.reply = _reply(*outputs)
    with pytest.raises(Unavailable, match=rf"Triton model 'detector' at .* answered .*{words}"):
        await models.detect(FRAME, 0.5)


async def test_an_embedder_reply_without_a_row_per_crop_reads_as_triton_unavailable(triton):
    replies, models = triton
    replies.reply = _reply(_output("EMBEDDINGS", [0, 512], b""))
    with pytest.raises(Unavailable, match=r"Triton model 'reid' .* answered an empty EMBEDDINGS output"):
        await models.embed(CROPS)
