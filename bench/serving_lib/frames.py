"""The benchmark's input: one generated scene (3 cameras, 640x480 people footage), decoded once.

The scene comes from the fixed suite (``spoton_inference.scenes.suite``), built into
``var/bench/scenes/`` as ``make bench-accuracy`` builds it, or reused from there.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np

from spoton_inference.scenes.suite import build, suite
from spoton_inference.settings import REPO_ROOT

SCENES_DIR = REPO_ROOT / "var" / "bench" / "scenes"
SCENE = "s1-easy-overlap"
JPEG_QUALITY = 90
# The Detect frame: one with people in it, not the empty first frames of a scene.
DETECT_FRAME = 40


@dataclasses.dataclass(frozen=True, slots=True)
class Scene:
    env_dir: Path
    # Per camera, every frame of every sub-video in order (RGB): what a task over the scene decodes.
    frames: dict[str, list[np.ndarray]]

    @property
    def camera_ids(self) -> list[str]:
        return list(self.frames)

    def detect_frame(self) -> np.ndarray:
        return self.frames[self.camera_ids[0]][DETECT_FRAME]


def load_scene() -> Scene:
    configs = [(name, config) for name, config in suite() if name == SCENE]
    build(SCENES_DIR, scenes=configs)
    env_dir = SCENES_DIR / SCENE
    frames = {
        cam.name: [f for video in sorted(cam.glob("sub_video_*.mp4")) for f in _read(video)]
        for cam in sorted((env_dir / "cameras").iterdir())
    }
    return Scene(env_dir, frames)


def jpeg(frame_rgb: np.ndarray) -> bytes:
    ok, data = cv2.imencode(
        ".jpg", cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
    )
    if not ok:
        raise ValueError("could not encode the frame as JPEG")
    return data.tobytes()


def _read(video: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(video))
    frames = []
    try:
        while True:
            ok, bgr = cap.read()
            if not ok:
                return frames
            frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    finally:
        cap.release()
