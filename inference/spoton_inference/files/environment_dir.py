"""Loading environments and cameras from an environment directory.

The directory format is stable (see MISSION.md)::

    <env_dir>/environment.json
    <env_dir>/cameras/<camera_id>/sub_video_01.mp4, sub_video_02.mp4, ...

Every file it names is read from inside ``env_dir`` only: a path, or a symlink, that leads out
of it is refused, so an environment.json cannot make the server read (and publish) any other
file. The floor-plan image is also refused when it has other hard links (st_nlink > 1): a hard
link cannot be told from the original by its path, so one made of a file elsewhere would pass.
Sub-videos are exempt from that rule (tasks hard-link them into the media root themselves)
but must decode as video, which a stolen text or key file does not.

Reading environment.json itself (:func:`parse_manifest`, :func:`environment_from_doc`) touches no
file, so an environment in a bucket (files/bucket_environment.py) is read by the same rules.
"""

from __future__ import annotations

import dataclasses
import json
import re
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2

from spoton_inference.domain.camera_source import CameraSource
from spoton_inference.domain.environment import Camera, Environment, FloorMap, SubVideo, require_id
from spoton_inference.domain.errors import InvalidArgument
from spoton_inference.domain.geometry import Homography

SUB_VIDEO_NAME = re.compile(r"^sub_video_(\d+)\.mp4$")


def load_environment_dir(path: Path | str) -> Environment:
    """Read and validate an environment directory; InvalidArgument says what is wrong.

    A missing directory and one without environment.json get the same answer, so registering
    cannot be used to learn which directories exist on the server. Sub-videos are probed with
    OpenCV so a task knows each batch's frame count up front.
    """
    not_one = InvalidArgument(
        f"{str(path)[:200]!r} is not an environment directory on this server: it must be a directory "
        "holding environment.json (and cameras/<id>/sub_video_NN.mp4)"
    )
    try:
        env_dir = Path(path).expanduser().resolve()
        manifest = env_dir / "environment.json"
        found = env_dir.is_dir() and manifest.is_file() and _inside(manifest, env_dir)
    except (OSError, RuntimeError, ValueError):  # a name too long, an unknown ~user, a NUL
        found = False
    if not found:
        raise not_one
    doc = parse_manifest(manifest.read_bytes(), str(manifest))
    env = environment_from_doc(doc, str(manifest), lambda camera_id: scan_sub_videos(env_dir, camera_id))
    image = (doc.get("map") or {}).get("image")
    floor_map = dataclasses.replace(env.floor_map, image=floor_map_image(env_dir, image) if image else None)
    return dataclasses.replace(env, floor_map=floor_map, source_dir=env_dir)


# A camera's sub-videos, in batch order, and the first one's (width, height, fps) when there are any.
SubVideoScan = Callable[[str], tuple[tuple[SubVideo, ...], tuple[int, int, float] | None]]


def parse_manifest(text: bytes | str, where: str) -> dict[str, Any]:
    """environment.json's JSON object; InvalidArgument naming ``where`` when it is not one."""
    try:
        doc = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidArgument(f"{where} is not valid JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise InvalidArgument(f"{where} must hold a JSON object")
    return doc


def manifest_camera_ids(doc: dict[str, Any]) -> list[str]:
    """The camera ids environment.json lists that are valid ids (the others fail in
    :func:`environment_from_doc`), so their sub-videos can be found before it runs."""
    cams = doc.get("cameras")
    ids = [c.get("id") for c in cams if isinstance(c, dict)] if isinstance(cams, list) else []
    return [i for i in ids if isinstance(i, str) and _valid_id(i)]


def environment_from_doc(doc: dict[str, Any], where: str, scan: SubVideoScan) -> Environment:
    """The environment environment.json (``doc``, read from ``where``) describes, with each
    camera's sub-videos from ``scan``. Pure apart from ``scan``: a directory and a bucket share it.

    The floor map carries metres_per_pixel only; its image and the source are the caller's.
    """
    env_id = require_id(doc.get("id"), "environment id")
    cams_doc = doc.get("cameras")
    if not isinstance(cams_doc, list) or not cams_doc:
        raise InvalidArgument(f"{where}: 'cameras' must be a non-empty list")
    cameras = tuple(_load_camera(scan, c, i) for i, c in enumerate(cams_doc))
    ids = [c.camera_id for c in cameras]
    if len(set(ids)) != len(ids):
        raise InvalidArgument(f"{where}: camera ids must be unique, got {ids}")
    map_doc = doc.get("map") or {}
    if not isinstance(map_doc, dict):
        raise InvalidArgument(f"{where}: 'map' must be an object")
    floor_map = FloorMap(metres_per_pixel=float(map_doc.get("metres_per_pixel") or 0.0))
    return Environment(env_id, str(doc.get("name") or env_id), floor_map, cameras)


def floor_map_image(env_dir: Path, name: object) -> Path:
    """The floor-plan image ``name`` of environment.json: a single-linked file inside ``env_dir``."""
    where = "map.image"
    if not isinstance(name, str):
        raise InvalidArgument(f"{where} must be a path relative to the environment directory")
    try:
        path = env_dir / name
        inside = _inside(path, env_dir)
        info = path.stat() if inside else None
    except (OSError, ValueError):
        inside, info = True, None
    if not inside:
        raise InvalidArgument(
            f"{where} {name[:200]!r} leads out of the environment directory (an absolute path, '..' or a symlink); "
            "put the image inside the directory"
        )
    if info is None or not stat.S_ISREG(info.st_mode):
        raise InvalidArgument(f"{where} {name[:200]!r} is not a file in the environment directory")
    if info.st_nlink > 1:
        raise InvalidArgument(
            f"{where} {name[:200]!r} has other hard links ({info.st_nlink}); floor-plan images with more than one "
            "link are refused (a hard link could name a file outside the directory): copy the image instead"
        )
    return path.resolve()


def _inside(path: Path, directory: Path) -> bool:
    """Whether ``path``, with every symlink followed, is within ``directory`` (itself resolved)."""
    return path.resolve().is_relative_to(directory.resolve())


def _valid_id(value: str) -> bool:
    try:
        require_id(value, "id")
    except InvalidArgument:
        return False
    return True


def _load_camera(scan: SubVideoScan, doc: object, index: int) -> Camera:
    if not isinstance(doc, dict):
        raise InvalidArgument(f"camera #{index} must be an object")
    cam_id = require_id(doc.get("id"), f"camera #{index} id")
    where = f"camera {cam_id!r}"
    homography = None
    h_doc = doc.get("homography")
    if h_doc:
        try:
            if "matrix" in h_doc:
                homography = Homography.from_matrix(h_doc["matrix"])
            else:
                homography = Homography.fit(h_doc.get("image_points", []), h_doc.get("map_points", []))
        except InvalidArgument as exc:
            raise InvalidArgument(f"{where}: {exc}") from exc

    sub_videos, probed = scan(cam_id)
    width, height, fps = int(doc.get("width") or 0), int(doc.get("height") or 0), float(doc.get("fps") or 0)
    if probed is not None:
        width, height, fps = width or probed[0], height or probed[1], fps or probed[2]
    if fps <= 0:
        raise InvalidArgument(f"{where}: fps is missing and could not be read from a video")
    source = CameraSource.default_for(sub_videos)
    return Camera(cam_id, str(doc.get("name") or cam_id), fps, width, height, homography, sub_videos, source=source)


def scan_sub_videos(env_dir: Path, camera_id: str) -> tuple[tuple[SubVideo, ...], tuple[int, int, float] | None]:
    """``cameras/<camera_id>/sub_video_NN.mp4`` under ``env_dir``, in batch order, each probed.

    Also returns the first video's width, height and fps (None when there is no video).
    """
    cam_dir = env_dir / "cameras" / camera_id
    files = sorted(
        (p for p in cam_dir.glob("sub_video_*.mp4") if SUB_VIDEO_NAME.match(p.name)),
        key=lambda p: int(SUB_VIDEO_NAME.match(p.name).group(1)),  # type: ignore[union-attr]
    )
    sub_videos = []
    probed = None
    for f in files:
        if not _inside(f, env_dir):
            raise InvalidArgument(
                f"camera {camera_id!r}: {f.name} is a symlink leading out of the environment directory; "
                "put the video itself inside it"
            )
        probe = _probe(f)
        if probe is None:
            raise InvalidArgument(f"camera {camera_id!r}: {f} is not a readable video")
        n, w, h, f_fps = probe
        sub_videos.append(SubVideo(f, n))
        probed = probed or (w, h, f_fps)
    return tuple(sub_videos), probed


def _probe(path: Path) -> tuple[int, int, int, float] | None:
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            return None
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        w = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        h = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        fps = float(cap.get(cv2.CAP_PROP_FPS))
        return (n, w, h, fps) if n > 0 and w > 0 and h > 0 else None
    finally:
        cap.release()
