"""Replaying the service's tracking core on a scene's exported detections.

The service writes every raw detection it saw (``<cam>.detections.txt``). Feeding those to
:class:`~spoton_inference.pipeline.multicam.MultiCameraTracker`, the object the service's
runner drives, reproduces the service's association without Triton in the loop, which
serves two purposes:

- **the upper bound the issue asks for**: the same detections, the same tracker, but every
  appearance feature replaced by a ground-truth identity feature (:func:`ground_truth_features`):
  what a perfect Re-ID embedder would give this association;
- **fast iteration** on tracker and association settings (``bench/replay.py``), with the
  default embedder's features computed once per scene and cached (:func:`model_features`).

Features are per camera, then per MOT frame (global frame index + 1), one row per
detection in the file's order.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from accuracy_lib.matching import match_boxes
from accuracy_lib.motfile import FrameDetections, MotRow, read_detections, write_rows, xywh_to_xyxy
from spoton_client.scoring import read_mot
from spoton_inference.core.environment import Environment
from spoton_inference.pipeline.associate import AssociationConfig
from spoton_inference.pipeline.multicam import MultiCameraTracker, tracking_configs
from spoton_inference.pipeline.track import TrackerConfig
from spoton_inference.settings import REPO_ROOT, Settings

Features = dict[str, dict[int, np.ndarray]]

# Calibration for :func:`ground_truth_features`: two people's random 64-d unit vectors are
# 1 +- 0.125 apart in cosine distance, so 0.6 is over three sigmas below any of them.
PERFECT_REID_CALIBRATION = {"reid_same_distance": 0.0, "reid_different_distance": 0.6}


def perfect_reid_configs(start_score: float, fps: float) -> tuple[TrackerConfig, AssociationConfig]:
    """The service's settings (environment included), calibrated for ground-truth features, with
    the low-score veto a strong embedder is worth (``Settings.reid_low_score_veto``)."""
    settings = dataclasses.replace(
        Settings.from_env(), detection_threshold=start_score, reid_low_score_veto=True, **PERFECT_REID_CALIBRATION
    )
    return tracking_configs(settings, fps)


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
    env: Environment, detections: Mapping[str, Mapping[int, FrameDetections]], triton_url: str, cache_dir: Path
) -> Features:
    """The default embedder's feature for every detection, through Triton, cached on disk.

    The cache key is a hash of the detections and of ``model_repository/reid``'s
    ``1/model.py`` and ``config.pbtxt``: new detections or a change to that code or config
    recompute it. The weights (``1/model.onnx``) are not hashed: after replacing them, clear
    ``cache_dir``.
    """
    from spoton_inference.pipeline.decode import read_frames_rgb
    from spoton_inference.pipeline.triton_models import TritonModels, crop_people

    digest = hashlib.sha256(
        repr(sorted((c, f, d.boxes.tobytes()) for c, fs in detections.items() for f, d in fs.items())).encode()
    )
    for part in ("1/model.py", "config.pbtxt"):
        digest.update((REPO_ROOT / "model_repository" / "reid" / part).read_bytes())
    cache = cache_dir / f"{env.environment_id}-{digest.hexdigest()[:16]}.npz"
    if cache.exists():
        with np.load(cache) as data:
            out: Features = {}
            for key in data.files:
                cam, frame = key.rsplit("/", 1)
                out.setdefault(cam, {})[int(frame)] = data[key]
            return out
    models = TritonModels(triton_url, "detector", "reid")
    out = {}
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


def replay(
    env: Environment,
    detections: Mapping[str, Mapping[int, FrameDetections]],
    features: Features,
    out_dir: Path,
    tracker_config: TrackerConfig,
    association_config: AssociationConfig,
) -> None:
    """Track and associate like the service, writing ``<cam>.local.txt`` and ``<cam>.global.txt``."""
    cams = [c.camera_id for c in env.cameras]
    tracker = MultiCameraTracker(
        cams, {c.camera_id: c.homography for c in env.cameras}, tracker_config, association_config
    )
    local: dict[str, list[MotRow]] = {c: [] for c in cams}
    glob: dict[str, list[MotRow]] = {c: [] for c in cams}
    last = max((max(frames, default=0) for frames in detections.values()), default=0)
    empty = FrameDetections.empty()
    for frame in range(1, last + 1):
        frame_dets = {cam: detections[cam].get(frame, empty) for cam in cams}
        plans = tracker.plan(
            {
                cam: (xywh_to_xyxy(d.boxes).astype(np.float32), d.scores.astype(np.float32))
                for cam, d in frame_dets.items()
            }
        )
        wanted = {
            cam: {i: features[cam][frame][i] for i in plan.needs_embedding}
            for cam, plan in plans.items()
            if plan.needs_embedding
        }
        for cam, tracks in tracker.update(frame - 1, plans, wanted).items():
            for t in tracks:
                x1, y1, x2, y2 = (float(v) for v in t.box)
                box = (x1, y1, x2 - x1, y2 - y1)
                local[cam].append(MotRow(frame, t.track_id, box, t.score))
                glob[cam].append(MotRow(frame, t.global_id, box, t.score))
    out_dir.mkdir(parents=True, exist_ok=True)
    for cam in cams:
        write_rows(out_dir / f"{cam}.local.txt", local[cam])
        write_rows(out_dir / f"{cam}.global.txt", glob[cam])
