"""Frames to the embedded Triton through system shared memory, in the request, or as the JPEG
itself: the same detections every way; the regions stay bounded, leave nothing in /dev/shm,
are released on close (those of a killed client by the next one), and come back after
Triton restarts; a Triton that cannot map them gets frames over gRPC.

Real Triton with the real models; the frame is TUD-Campus (``../shared/real``), five people.
"""

from __future__ import annotations

import asyncio
import struct
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
import pytest_asyncio

from spoton_inference.domain.image_header import DEFAULT_MAX_IMAGE_PIXELS
from spoton_inference.embedded.triton import EmbeddedTriton
from spoton_inference.pipeline import triton_shm
from spoton_inference.pipeline.image_decode import decode_encoded, decode_raw
from spoton_inference.pipeline.triton_models import TritonModels, crop_people
from spoton_inference.pipeline.triton_shm import DEFAULT_MAX_REGIONS, NAME_PREFIX
from spoton_inference.services.detection import Detect
from spoton_inference.settings import REPO_ROOT, Settings

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

FRAME_VIDEO = REPO_ROOT.parent / "shared" / "real" / "tud-campus" / "cameras" / "c01" / "sub_video_01.mp4"
THRESHOLD = 0.3


@pytest.fixture(scope="module")
def frame_bgr() -> np.ndarray:
    capture = cv2.VideoCapture(str(FRAME_VIDEO))
    ok, frame = capture.read()
    capture.release()
    assert ok, f"cannot read {FRAME_VIDEO}"
    return frame


@pytest_asyncio.fixture(scope="module")
async def triton(make_data_dir: Callable[[str], Path]) -> AsyncIterator[EmbeddedTriton]:
    server = EmbeddedTriton(Settings(data_dir=make_data_dir("triton-shm")))
    await server.start()
    yield server
    await server.stop()


@pytest_asyncio.fixture
async def models(triton: EmbeddedTriton) -> AsyncIterator[TritonModels]:
    """A client on the default setting (auto): the embedded Triton is on loopback."""
    client = TritonModels(triton.grpc_url, "detector", "reid")
    yield client
    await client.close()


async def our_regions(triton: EmbeddedTriton) -> list[str]:
    """Names of the regions Triton holds for SpotOn clients."""
    probe = TritonModels(triton.grpc_url, "detector", "reid", shared_memory="off")
    try:
        status = await probe._client.get_system_shared_memory_status(as_json=True)
    finally:
        await probe.close()
    return [name for name in status.get("regions", {}) if name.startswith(NAME_PREFIX)]


def exited_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def shm_files(prefix: str = NAME_PREFIX) -> list[str]:
    """/dev/shm names starting with ``prefix``; any SpotOn client's by default."""
    return [p.name for p in triton_shm.SHM_DIR.iterdir() if p.name.startswith(prefix)]


async def test_shared_memory_and_grpc_give_the_same_detections(
    triton: EmbeddedTriton, models: TritonModels, frame_bgr: np.ndarray
) -> None:
    over_grpc = TritonModels(triton.grpc_url, "detector", "reid", shared_memory="off")
    try:
        assert models.shared_memory is not None and over_grpc.shared_memory is None
        rgb_view = frame_bgr[:, :, ::-1]  # as Detect's raw path hands it over: a strided view
        shared = await models.detect(rgb_view, THRESHOLD)
        sent = await over_grpc.detect(np.ascontiguousarray(rgb_view), THRESHOLD)
        assert len(sent) >= 3, "TUD-Campus' first frame shows several people"
        np.testing.assert_array_equal(shared.boxes, sent.boxes)
        np.testing.assert_array_equal(shared.scores, sent.scores)

        jpeg = cv2.imencode(".png", frame_bgr)[1].tobytes()  # lossless: the same pixels decoded there
        assert await models.accepts_encoded()
        decoded_there = await over_grpc.detect_encoded(jpeg, THRESHOLD)
        np.testing.assert_array_equal(decoded_there.boxes, sent.boxes)

        crops = crop_people(np.ascontiguousarray(rgb_view), sent.boxes)
        np.testing.assert_allclose(await models.embed(crops), await over_grpc.embed(crops), atol=1e-6)
        assert models.shared_memory.registered > 0
    finally:
        await over_grpc.close()


async def test_detect_hands_the_file_to_the_detector_with_the_same_result(
    models: TritonModels, frame_bgr: np.ndarray
) -> None:
    """Detect's JPEG path: the detector decodes the file (the same OpenCV as here); with
    embeddings asked for, the service decodes it for the crops."""
    jpeg = cv2.imencode(".jpg", frame_bgr)[1].tobytes()
    detect = Detect(models, decode_encoded, decode_raw, crop_people)
    here = await detect.detect_image(decode_encoded(jpeg, DEFAULT_MAX_IMAGE_PIXELS), THRESHOLD, False)
    there = await detect.detect_encoded(jpeg, DEFAULT_MAX_IMAGE_PIXELS, THRESHOLD, False)
    assert await models.accepts_encoded()
    assert (there.width, there.height) == (here.width, here.height) == (frame_bgr.shape[1], frame_bgr.shape[0])
    assert len(here.scores) >= 3
    np.testing.assert_array_equal(there.boxes, here.boxes)
    np.testing.assert_array_equal(there.scores, here.scores)
    with_embeddings = await detect.detect_encoded(jpeg, DEFAULT_MAX_IMAGE_PIXELS, THRESHOLD, True)
    np.testing.assert_array_equal(with_embeddings.boxes, here.boxes)
    assert with_embeddings.embeddings is not None and len(with_embeddings.embeddings) == len(here.scores)


async def test_a_jpeg_that_exif_rotates_reports_the_size_of_the_frame_detected_in(models: TritonModels) -> None:
    """OpenCV turns a JPEG upright by its Exif orientation, so its header's size is not the
    frame's: such a file is decoded here, and the reply gives the upright size."""
    jpeg = cv2.imencode(".jpg", np.zeros((40, 80, 3), np.uint8))[1].tobytes()
    entry = struct.pack("<HHIHH", 0x0112, 3, 1, 6, 0)  # orientation 6: rotate 90 degrees clockwise
    exif = b"Exif\x00\x00II*\x00" + struct.pack("<IH", 8, 1) + entry + struct.pack("<I", 0)
    rotated = jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(exif) + 2) + exif + jpeg[2:]
    detect = Detect(models, decode_encoded, decode_raw, crop_people)
    result = await detect.detect_encoded(rotated, DEFAULT_MAX_IMAGE_PIXELS, THRESHOLD, False)
    assert (result.width, result.height) == (40, 80)


async def test_regions_stay_bounded_leave_no_files_and_go_on_close(
    triton: EmbeddedTriton, frame_bgr: np.ndarray
) -> None:
    client = TritonModels(triton.grpc_url, "detector", "reid", shared_memory="on")
    rgb = frame_bgr[:, :, ::-1]
    # Three sizes, so regions get replaced by bigger ones too; 4x the pool, many at once.
    frames = [rgb, cv2.resize(rgb, (1280, 960)), rgb[:200, :300]]
    assert await our_regions(triton) == [], "the clients of the tests before released theirs"
    assert client.shared_memory is not None
    # Only this pool's names: other services in this process (the suite's live service) have
    # regions of their own between creating and registering them.
    prefix = client.shared_memory.prefix
    try:
        for _ in range(4):
            await asyncio.gather(*(client.detect(frames[i % 3], THRESHOLD) for i in range(DEFAULT_MAX_REGIONS * 2)))
            assert len(await our_regions(triton)) <= DEFAULT_MAX_REGIONS
            assert shm_files(prefix) == [], "regions are unlinked once Triton has mapped them"
        assert client.shared_memory.registered > 0
    finally:
        await client.close()
    assert await our_regions(triton) == []


async def test_regions_a_killed_client_left_in_triton_are_dropped(
    triton: EmbeddedTriton, frame_bgr: np.ndarray
) -> None:
    """A client killed with its regions registered: the next client's pool unregisters them."""
    name = f"{NAME_PREFIX}{exited_pid()}-deadbeef-0"
    path = triton_shm.SHM_DIR / name
    path.write_bytes(bytes(4096))
    probe = TritonModels(triton.grpc_url, "detector", "reid", shared_memory="off")
    try:
        await probe._client.register_system_shared_memory(name, "/" + name, 4096)
    finally:
        path.unlink()
        await probe.close()
    assert name in await our_regions(triton)
    client = TritonModels(triton.grpc_url, "detector", "reid", shared_memory="on")
    try:
        await client.detect(np.ascontiguousarray(frame_bgr[:, :, ::-1]), THRESHOLD)
        assert name not in await our_regions(triton)
    finally:
        await client.close()


async def test_a_restarted_triton_gets_the_regions_again(
    triton: EmbeddedTriton, models: TritonModels, frame_bgr: np.ndarray
) -> None:
    rgb = np.ascontiguousarray(frame_bgr[:, :, ::-1])
    before = await models.detect(rgb, THRESHOLD)
    assert await our_regions(triton)
    await triton.stop()
    await triton.start()  # same ports: what the embedded supervisor does after a crash
    assert await our_regions(triton) == []
    after = await models.detect(rgb, THRESHOLD)
    np.testing.assert_array_equal(after.boxes, before.boxes)
    assert models.shared_memory is not None, "still on shared memory, not fallen back to gRPC"
    assert len(await our_regions(triton)) == models.shared_memory.registered


@pytest.mark.parametrize(
    "shm_dir",
    [
        "elsewhere",  # as a Triton on another host, or in a container without this /dev/shm
        "missing",  # as a host without /dev/shm (or with none to spare)
    ],
)
async def test_a_triton_that_cannot_map_the_memory_gets_frames_over_grpc(
    triton: EmbeddedTriton, frame_bgr: np.ndarray, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shm_dir: str
) -> None:
    # Regions in a folder Triton's shm_open cannot see, or in none at all.
    monkeypatch.setattr(triton_shm, "SHM_DIR", tmp_path if shm_dir == "elsewhere" else tmp_path / "missing")
    client = TritonModels(triton.grpc_url, "detector", "reid", shared_memory="on")
    rgb = np.ascontiguousarray(frame_bgr[:, :, ::-1])
    try:
        detections = await client.detect(rgb, THRESHOLD)
        assert client.shared_memory is None
        assert len(detections) >= 3
        assert list(tmp_path.iterdir()) == []
    finally:
        await client.close()
