"""Camera operations: test a connection, take a snapshot (optionally with detections drawn).

A connection test never fails as a call for a source that is down: its result says why
(``ok`` false, a masked ``reason``); only a malformed URL is an InvalidArgument. Snapshots of
a live camera reuse the newest frame of a running pull when there is one, so looking at a
camera does not open a second connection to it; otherwise one frame is grabbed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from typing import Protocol

import cv2
import numpy as np

from spoton_inference.domain.camera_source import CameraSource
from spoton_inference.domain.environment import Camera
from spoton_inference.domain.errors import FailedPrecondition, Unavailable
from spoton_inference.domain.probe_result import ProbeResult
from spoton_inference.services.catalog import Catalog

JPEG_QUALITY = 90
BOX_COLOUR = (0, 200, 255)  # BGR, amber: detections are not yet identities, so no id colours


class PullState(Protocol):
    @property
    def last_frame_at(self) -> float | None: ...


class RunningPull(Protocol):
    """A live task's pull of a camera (pipeline/live_pull.py): its newest frame, BGR."""

    @property
    def latest(self) -> np.ndarray | None: ...
    @property
    def state(self) -> PullState: ...


class ActivePulls(Protocol):
    """Running pulls by (environment id, camera id), registered by the live runner."""

    def get(self, key: tuple[str, str]) -> RunningPull | None: ...


class Detected(Protocol):
    @property
    def boxes(self) -> np.ndarray: ...
    @property
    def scores(self) -> np.ndarray: ...

    def __len__(self) -> int: ...


class Detector(Protocol):
    """The person detector (Triton)."""

    async def detect(self, frame_rgb: np.ndarray, score_threshold: float) -> Detected: ...


class ProbeSource(Protocol):
    """One look at a live source (pipeline/source_probe.py); blocking, run in a thread."""

    def __call__(self, source: CameraSource, timeout_s: float, *, keep_frame: bool = False) -> ProbeResult: ...


@dataclasses.dataclass(frozen=True, slots=True)
class CameraOpsSettings:
    # SPOTON_SOURCE_CONNECT_TIMEOUT_S: bound on opening a source for a test or a snapshot.
    connect_timeout_s: float
    # SPOTON_DETECTION_THRESHOLD: detections drawn on a snapshot.
    detection_threshold: float


@dataclasses.dataclass(frozen=True, slots=True)
class Snapshot:
    jpeg: bytes
    width: int
    height: int
    captured_at: dt.datetime
    detections: int  # drawn; 0 when not asked for


class CameraOperations:
    def __init__(
        self,
        settings: CameraOpsSettings,
        catalog: Catalog,
        models: Detector,
        pulls: ActivePulls,
        probe: ProbeSource,
    ) -> None:
        self._settings = settings
        self._catalog = catalog
        self._models = models
        self._pulls = pulls
        self._probe = probe

    def live_source(self, environment_id: str, camera_id: str) -> CameraSource:
        """A registered camera's RTSP/HTTP source; FailedPrecondition for a camera without one."""
        camera = self._catalog.camera(environment_id, camera_id)
        if not camera.source.is_live:
            raise FailedPrecondition(
                f"camera {camera_id!r} of environment {environment_id!r} has a {camera.source.kind} source, not an "
                "RTSP or HTTP URL: there is nothing to test its connection"
            )
        return camera.source

    async def test_source(self, source: CameraSource) -> ProbeResult:
        """Open ``source`` within SPOTON_SOURCE_CONNECT_TIMEOUT_S; what it sends, or why not.

        A source the policy refuses (services/source_policy.py) is InvalidArgument, and never called.
        """
        await self._check(source)
        return await asyncio.to_thread(self._probe, source, self._settings.connect_timeout_s)

    async def _check(self, source: CameraSource) -> None:
        # Checked at connect time too: the host may resolve elsewhere than when it was stored.
        await asyncio.to_thread(self._catalog.source_policy.check, source)

    async def snapshot(self, environment_id: str, camera_id: str, *, draw_detections: bool = False) -> Snapshot:
        camera = self._catalog.camera(environment_id, camera_id)
        bgr, captured_at = await self._frame(environment_id, camera)
        count = 0
        if draw_detections:
            rgb = np.ascontiguousarray(bgr[:, :, ::-1])
            det = await self._models.detect(rgb, self._settings.detection_threshold)
            bgr = bgr.copy()
            draw(bgr, det.boxes, det.scores)
            count = len(det)
        ok, jpeg = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        assert ok
        return Snapshot(jpeg.tobytes(), bgr.shape[1], bgr.shape[0], captured_at, count)

    async def _frame(self, environment_id: str, camera: Camera) -> tuple[np.ndarray, dt.datetime]:
        pull = self._pulls.get((environment_id, camera.camera_id))
        if pull is not None and pull.latest is not None and pull.state.last_frame_at is not None:
            return pull.latest, dt.datetime.fromtimestamp(pull.state.last_frame_at, dt.UTC)
        if camera.source.is_live:
            await self._check(camera.source)
            result = await asyncio.to_thread(
                self._probe, camera.source, self._settings.connect_timeout_s, keep_frame=True
            )
            if not result.ok or result.frame is None:
                raise Unavailable(f"camera {camera.camera_id!r} gave no frame: {result.reason}")
            return result.frame, dt.datetime.now(dt.UTC)
        if camera.sub_videos:
            return await asyncio.to_thread(_first_frame, camera), dt.datetime.now(dt.UTC)
        raise FailedPrecondition(
            f"camera {camera.camera_id!r} of environment {environment_id!r} has no live source and no "
            "sub-videos: its frames come from client streams, so there is no frame to show"
        )


def draw(bgr: np.ndarray, boxes: np.ndarray, scores: np.ndarray) -> None:
    """Boxes with their scores, in place (the annotated videos' style, without ids)."""
    scale = max(bgr.shape[0] / 720, 0.4)
    for (x1, y1, x2, y2), score in zip(boxes, scores, strict=True):
        top_left = (round(float(x1)), round(float(y1)))
        cv2.rectangle(bgr, top_left, (round(float(x2)), round(float(y2))), BOX_COLOUR, max(1, round(2 * scale)))
        label = f"{float(score):.2f}"
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.6 * scale, 1)
        ty = max(top_left[1], th + base + 2)
        cv2.rectangle(bgr, (top_left[0], ty - th - base - 2), (top_left[0] + tw + 4, ty), BOX_COLOUR, -1)
        cv2.putText(bgr, label, (top_left[0] + 2, ty - base - 1), cv2.FONT_HERSHEY_SIMPLEX, 0.6 * scale, (0, 0, 0), 1)


def _first_frame(camera: Camera) -> np.ndarray:
    path = camera.sub_videos[0].path
    capture = cv2.VideoCapture(str(path))
    try:
        ok, frame = capture.read()
    finally:
        capture.release()
    if not ok:
        raise Unavailable(f"camera {camera.camera_id!r}: cannot read a frame from {path.name}")
    return frame
