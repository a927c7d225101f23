"""Replaying the service's tracking on a scene's exported detections.

The service writes every raw detection it saw (``<cam>.detections.txt``). Feeding those to the
same online tracker (:class:`~spoton_inference.tracking.multicam.MultiCameraTracker`) and the
same refinement windows (:class:`~spoton_inference.pipeline.refinement.RefinementWindows`) the
runner drives reproduces the service without Triton in the loop, which serves two purposes:

- **the upper bound the issue asks for**: the same detections, the same tracking, but every
  appearance feature replaced by a ground-truth identity feature (:func:`ground_truth_features`):
  what a perfect Re-ID embedder would give;
- **fast iteration** on settings (``bench/replay.py``), with the default embedder's features
  computed once per scene and cached (:func:`model_features`).

Features are per camera, then per MOT frame (global frame index + 1), one row per detection
in the file's order.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from accuracy_lib.matching import match_boxes
from accuracy_lib.motfile import FrameDetections, MotRow, read_detections, write_rows, xywh_to_xyxy
from spoton_client.scoring import read_mot
from spoton_inference.domain.environment import Environment
from spoton_inference.domain.events import TrackingUpdate
from spoton_inference.pipeline.refinement import RefinementWindows
from spoton_inference.pipeline.tracking_settings import TrackingSetup, tracking_setup
from spoton_inference.settings import REPO_ROOT, Settings
from spoton_inference.tracking.calibration import ReidFit

Features = dict[str, dict[int, np.ndarray]]

# Calibration prior for :func:`ground_truth_features`: two people's random 64-d unit vectors
# are 1 +- 0.125 apart in cosine distance, so 0.6 is over three sigmas below any of them.
PERFECT_REID_CALIBRATION = {"reid_same_distance": 0.0, "reid_different_distance": 0.6}


@dataclasses.dataclass(frozen=True, slots=True)
class ReplayResult:
    online_s: float
    refine_s: list[float]  # per refinement window
    fit: ReidFit  # the Re-ID calibration the tracking fitted (or its prior, without self-calibration)


def service_setup(start_score: float, fps: float, **overrides: object) -> TrackingSetup:
    """The service's tracking setup (SPOTON_* variables apply) at this threshold and frame rate."""
    settings = dataclasses.replace(Settings.from_env(), detection_threshold=start_score, **overrides)
    return tracking_setup(settings, fps)


def perfect_reid_setup(start_score: float, fps: float) -> TrackingSetup:
    """The service's setup with the calibration prior of ground-truth features."""
    return service_setup(start_score, fps, **PERFECT_REID_CALIBRATION)


def load_detections(det_dir: Path, camera_ids: list[str]) -> dict[str, dict[int, FrameDetections]]:
    return {cam: read_detections(det_dir / f"{cam}.detections.txt") for cam in camera_ids}


def ground_truth_features(
    gt_dir: Path, detections: Mapping[str, Mapping[int, FrameDetections]], dim: int = 64, seed: int = 0
) -> Features:
    """A perfect embedder: each detection's feature is its person's (IoU >= 0.5 to ground truth).

    Every person gets one random unit vector; a detection that matches nobody (a false
    positive) gets a fresh random one, so it resembles no one.
    """
    rng = np.random.default_rng(seed)
    person: dict[int, np.ndarray] = {}

    def unit() -> np.ndarray:
        v = rng.standard_normal(dim).astype(np.float32)
        return v / np.linalg.norm(v)

    out: Features = {}
    for cam, frames in detections.items():
        gt = read_mot(gt_dir / f"{cam}.txt")
        out[cam] = {}
        for frame, dets in frames.items():
            gt_ids, gt_boxes = gt.get(frame, (np.zeros(0, int), np.zeros((0, 4))))
            feats = np.stack([unit() for _ in range(len(dets.scores))]) if len(dets.scores) else np.zeros((0, dim))
            for g, d in match_boxes(gt_boxes, dets.boxes):
                feats[d] = person.setdefault(int(gt_ids[g]), unit())
            out[cam][frame] = feats.astype(np.float32)
    return out


async def model_features(
    env: Environment,
    detections: Mapping[str, Mapping[int, FrameDetections]],
    triton_url: str,
    cache_dir: Path,
    model_repository: Path = REPO_ROOT / "model_repository",
) -> Features:
    """The embedder's feature for every detection, through a Triton serving ``model_repository``,
    cached on disk.

    The cache key is a hash of the detections and of the repository's ``reid/1/model.py`` and
    ``reid/config.pbtxt``: new detections or a change to that code or config recompute it. The
    weights (``1/model.onnx``) are not hashed: after replacing them, clear ``cache_dir``.
    """
    from spoton_inference.pipeline.decode import read_frames_rgb
    from spoton_inference.pipeline.triton_models import TritonModels, crop_people

    cache = cache_dir / f"{env.environment_id}-{features_digest(detections, model_repository)}.npz"
    if cache.exists():
        return load_features(cache)
    models = TritonModels(triton_url, "detector", "reid")
    out: Features = {}
    try:
        for cam in env.cameras:
            out[cam.camera_id] = {}
            start = 0
            for sub in cam.sub_videos:
                index = 0
                async for rgb in read_frames_rgb(sub.path):
                    frame = start + index + 1
                    dets = detections[cam.camera_id].get(frame)
                    if dets is not None and len(dets.scores):
                        crops = crop_people(rgb, xywh_to_xyxy(dets.boxes).astype(np.float32))
                        out[cam.camera_id][frame] = np.asarray(await models.embed(crops), np.float32)
                    index += 1
                start += sub.num_frames
    finally:
        await models.close()
    cache_dir.mkdir(parents=True, exist_ok=True)
    np.savez(cache, **{f"{cam}/{frame}": v for cam, frames in out.items() for frame, v in frames.items()})
    return out


def features_digest(
    detections: Mapping[str, Mapping[int, FrameDetections]], model_repository: Path = REPO_ROOT / "model_repository"
) -> str:
    """What a cached feature file depends on: the detections and the embedder's code and config."""
    digest = hashlib.sha256(
        repr(sorted((c, f, d.boxes.tobytes()) for c, fs in detections.items() for f, d in fs.items())).encode()
    )
    for part in ("1/model.py", "config.pbtxt"):
        digest.update((model_repository / "reid" / part).read_bytes())
    return digest.hexdigest()[:16]


def load_features(path: Path) -> Features:
    out: Features = {}
    with np.load(path) as data:
        for key in data.files:
            cam, frame = key.rsplit("/", 1)
            out.setdefault(cam, {})[int(frame)] = data[key]
    return out


def replay(
    env: Environment,
    detections: Mapping[str, Mapping[int, FrameDetections]],
    features: Features,
    out_dir: Path,
    setup: TrackingSetup,
) -> ReplayResult:
    """Track and refine like the service, batch by batch.

    Writes ``<cam>.online.local.txt`` / ``<cam>.online.global.txt`` (the online pass) and
    ``<cam>.local.txt`` / ``<cam>.global.txt`` (refined; the online result again when the
    setup does not refine), and returns the time each part took.
    """
    cams = [c.camera_id for c in env.cameras]
    tracker = setup.multicam(env.cameras)
    refiner = setup.refiner(env.cameras)
    windows = RefinementWindows(refiner, cams, env.environment_id, setup.refine_window_frames) if refiner else None
    online: dict[str, list[MotRow]] = {c: [] for c in cams}
    online_global: dict[str, list[MotRow]] = {c: [] for c in cams}
    refined: list[TrackingUpdate] = []
    refine_s: list[float] = []
    batch_ends = set(np.cumsum([s.num_frames for s in env.cameras[0].sub_videos]).tolist()) if env.cameras else set()
    last = max((max(frames, default=0) for frames in detections.values()), default=0)
    empty = FrameDetections.empty()
    started = time.perf_counter()

    def refine() -> None:
        if windows is not None and windows.pending_frames:
            window = windows.refine(tracker.fit)
            refined.extend(window.updates)
            refine_s.append(window.seconds)

    for frame in range(1, last + 1):
        dets = {cam: detections[cam].get(frame, empty) for cam in cams}
        boxes = {
            cam: (xywh_to_xyxy(d.boxes).astype(np.float32), d.scores.astype(np.float32)) for cam, d in dets.items()
        }
        plans = tracker.plan(boxes)
        wanted = {
            cam: {i: features[cam][frame][i] for i in plan.needs_embedding}
            for cam, plan in plans.items()
            if plan.needs_embedding
        }
        tracked = tracker.update(frame - 1, plans, wanted)
        for cam, tracks in tracked.items():
            for t in tracks:
                x1, y1, x2, y2 = (float(v) for v in t.box)
                box = (x1, y1, x2 - x1, y2 - y1)
                online[cam].append(MotRow(frame, t.track_id, box, t.score))
                online_global[cam].append(MotRow(frame, t.global_id, box, t.score))
        if windows is not None:
            windows.add(frame - 1, {cam: ("", frame - 1) for cam in cams}, tracked, boxes)
            if windows.full or frame in batch_ends:
                refine()
    refine()
    online_s = time.perf_counter() - started - sum(refine_s)
    out_dir.mkdir(parents=True, exist_ok=True)
    for cam in cams:
        write_rows(out_dir / f"{cam}.online.local.txt", online[cam])
        write_rows(out_dir / f"{cam}.online.global.txt", online_global[cam])
    if windows is None:
        for cam in cams:
            write_rows(out_dir / f"{cam}.local.txt", online[cam])
            write_rows(out_dir / f"{cam}.global.txt", online_global[cam])
    else:
        _write_updates(out_dir, cams, refined)
    return ReplayResult(online_s, refine_s, tracker.fit)


def _write_updates(out_dir: Path, cams: list[str], updates: list[TrackingUpdate]) -> None:
    local: dict[str, list[MotRow]] = {c: [] for c in cams}
    glob: dict[str, list[MotRow]] = {c: [] for c in cams}
    for update in updates:
        for cam in update.cameras:
            for t in cam.tracks:
                x1, y1, x2, y2 = t.box
                box = (x1, y1, x2 - x1, y2 - y1)
                local[cam.camera_id].append(MotRow(update.global_frame_index + 1, t.track_id, box, t.score))
                glob[cam.camera_id].append(MotRow(update.global_frame_index + 1, t.global_id, box, t.score))
    for cam in cams:
        write_rows(out_dir / f"{cam}.local.txt", local[cam])
        write_rows(out_dir / f"{cam}.global.txt", glob[cam])
