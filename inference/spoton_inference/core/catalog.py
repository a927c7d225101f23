"""The environment catalogue: registered environments, with their homographies cached.

PostgreSQL is the record; the in-memory cache is filled at start-up and on every change,
so tasks and health never parse homographies on the frame path. Changes are serialised by
one lock, so a create cannot race another create of the same id in this process.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
from collections.abc import Awaitable, Callable
from pathlib import Path

import numpy as np

from spoton_inference.core.environment import (
    Camera,
    Environment,
    FloorMap,
    load_environment_dir,
    require_id,
    scan_sub_videos,
)
from spoton_inference.core.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from spoton_inference.core.geometry import Homography
from spoton_inference.core.media import MediaRoot
from spoton_inference.storage import catalog_store
from spoton_inference.storage.postgres import Database, TaskRecord

# Unfinished tasks over an environment; deleting what they use is refused.
InUse = Callable[[str], Awaitable[list[TaskRecord]]]


@dataclasses.dataclass(frozen=True, slots=True)
class HomographySpec:
    """A homography as a client gives it: point pairs, a row-major 3x3 matrix, or both."""

    image_points: tuple[tuple[float, float], ...] = ()
    map_points: tuple[tuple[float, float], ...] = ()
    matrix: tuple[float, ...] = ()

    def build(self) -> Homography:
        """Validate and build; a matrix given with points is measured against them."""
        if self.matrix:
            if len(self.matrix) != 9:
                raise InvalidArgument(f"homography matrix needs 9 values (row-major 3x3), got {len(self.matrix)}")
            with_points = bool(self.image_points or self.map_points)
            return Homography.from_matrix(
                np.reshape(self.matrix, (3, 3)),
                self.image_points if with_points else None,
                self.map_points if with_points else None,
            )
        if not self.image_points and not self.map_points:
            raise InvalidArgument(
                "homography is empty: give 4 or more image_points with their map_points, or a 9-value matrix"
            )
        return Homography.fit(self.image_points, self.map_points)


@dataclasses.dataclass(frozen=True, slots=True)
class CameraSpec:
    """A new camera; a zero fps/width/height is read from its sub-videos when there are any."""

    camera_id: str
    name: str = ""
    fps: float = 0.0
    width: int = 0
    height: int = 0
    homography: HomographySpec | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class CameraPatch:
    """Changes to a camera; ``None`` leaves a field as it is."""

    name: str | None = None
    fps: float | None = None
    width: int | None = None
    height: int | None = None
    homography: HomographySpec | None = None
    clear_homography: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class EnvironmentSpec:
    environment_id: str
    name: str = ""
    metres_per_pixel: float = 0.0
    cameras: tuple[CameraSpec, ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class EnvironmentPatch:
    name: str | None = None
    metres_per_pixel: float | None = None


async def _nothing_in_use(environment_id: str) -> list[TaskRecord]:
    return []


class Catalog:
    def __init__(self, db: Database, in_use: InUse = _nothing_in_use, media: MediaRoot | None = None) -> None:
        self._db = db
        self._in_use = in_use
        # Floor-plan images are published here so browsers can load them; None: not served.
        self._media = media
        self._cache: dict[str, Environment] = {}
        self._lock = asyncio.Lock()
        self.loaded = False

    async def load(self) -> None:
        self._cache = {e.environment_id: self._with_map_url(e) for e in await self._db.list_environments()}
        self.loaded = True

    async def register_directory(self, path: str) -> Environment:
        if not path:
            raise InvalidArgument("path is required: a directory holding environment.json")
        directory = Path(path).expanduser()
        if not directory.is_dir():
            raise NotFound(f"no such directory on the server: {path}")
        env = load_environment_dir(directory)
        if env.num_batches == 0:
            raise InvalidArgument(f"{directory} has no cameras/<id>/sub_video_NN.mp4 files")
        async with self._lock:
            return await self._save(env)

    def list(self) -> list[Environment]:
        return [self._cache[k] for k in sorted(self._cache)]

    def get(self, environment_id: str) -> Environment:
        env = self._cache.get(environment_id)
        if env is None:
            known = ", ".join(sorted(self._cache)) or "none registered"
            raise NotFound(f"environment {environment_id!r} not found (known: {known})")
        return env

    def camera(self, environment_id: str, camera_id: str) -> Camera:
        env = self.get(environment_id)
        cam = env.camera(camera_id)
        if cam is None:
            known = ", ".join(c.camera_id for c in env.cameras) or "none"
            raise NotFound(f"camera {camera_id!r} not found in environment {environment_id!r} (known: {known})")
        return cam

    # -- changes -----------------------------------------------------------------------

    async def create_environment(self, spec: EnvironmentSpec) -> Environment:
        env_id = require_id(spec.environment_id, "environment_id")
        metres_per_pixel = _non_negative(spec.metres_per_pixel, "metres_per_pixel")
        ids = [c.camera_id for c in spec.cameras]
        if len(set(ids)) != len(ids):
            raise InvalidArgument(f"camera ids must be unique within the environment, got {ids}")
        cameras = tuple(_new_camera(c, None) for c in spec.cameras)
        env = Environment(env_id, spec.name or env_id, FloorMap(None, metres_per_pixel), cameras)
        async with self._lock:
            if env_id in self._cache:
                raise AlreadyExists(f"environment {env_id!r} already exists; update it or pick another id")
            return await self._save(env)

    async def update_environment(self, environment_id: str, patch: EnvironmentPatch) -> Environment:
        async with self._lock:
            env = self.get(environment_id)
            floor_map = env.floor_map
            if patch.metres_per_pixel is not None:
                floor_map = dataclasses.replace(
                    floor_map, metres_per_pixel=_non_negative(patch.metres_per_pixel, "metres_per_pixel")
                )
            if patch.name is not None and not patch.name.strip():
                raise InvalidArgument("name must not be blank")
            env = dataclasses.replace(env, name=patch.name or env.name, floor_map=floor_map)
            return await self._save(env)

    async def delete_environment(self, environment_id: str) -> None:
        async with self._lock:
            self.get(environment_id)
            busy = await self._in_use(environment_id)
            if busy:
                raise FailedPrecondition(
                    f"environment {environment_id!r} has unfinished tasks {[t.task_id for t in busy]}; "
                    "cancel them (ControlTask) or wait for them to end, then delete it"
                )
            await catalog_store.delete_environment(self._db, environment_id)
            del self._cache[environment_id]

    async def create_camera(self, environment_id: str, spec: CameraSpec) -> Camera:
        async with self._lock:
            env = self.get(environment_id)
            if env.camera(spec.camera_id) is not None:
                raise AlreadyExists(
                    f"camera {spec.camera_id!r} already exists in environment {environment_id!r}; update it instead"
                )
            camera = _new_camera(spec, env.source_dir)
            await self._save(dataclasses.replace(env, cameras=(*env.cameras, camera)))
        return camera

    async def update_camera(self, environment_id: str, camera_id: str, patch: CameraPatch) -> Camera:
        if patch.homography is not None and patch.clear_homography:
            raise InvalidArgument("set either a new homography or clear_homography, not both")
        async with self._lock:
            env = self.get(environment_id)
            camera = self.camera(environment_id, camera_id)
            where = f"camera {camera_id!r}"
            homography = camera.homography
            if patch.clear_homography:
                homography = None
            elif patch.homography is not None:
                homography = _homography(patch.homography, where)
            if patch.name is not None and not patch.name.strip():
                raise InvalidArgument(f"{where}: name must not be blank")
            camera = dataclasses.replace(
                camera,
                name=patch.name or camera.name,
                fps=_positive_fps(patch.fps, where) if patch.fps is not None else camera.fps,
                width=_size(patch.width, "width", where) if patch.width is not None else camera.width,
                height=_size(patch.height, "height", where) if patch.height is not None else camera.height,
                homography=homography,
            )
            cameras = tuple(camera if c.camera_id == camera_id else c for c in env.cameras)
            await self._save(dataclasses.replace(env, cameras=cameras))
        return camera

    async def delete_camera(self, environment_id: str, camera_id: str) -> None:
        async with self._lock:
            env = self.get(environment_id)
            self.camera(environment_id, camera_id)
            busy = [t.task_id for t in await self._in_use(environment_id) if camera_id in t.camera_ids]
            if busy:
                raise FailedPrecondition(
                    f"camera {camera_id!r} is used by unfinished tasks {busy}; "
                    "cancel them (ControlTask) or wait for them to end, then delete it"
                )
            cameras = tuple(c for c in env.cameras if c.camera_id != camera_id)
            await self._save(dataclasses.replace(env, cameras=cameras))

    async def _save(self, env: Environment) -> Environment:
        """Write through: PostgreSQL first, so the cache never holds what was not stored."""
        await self._db.upsert_environment(env)
        self._cache[env.environment_id] = env = self._with_map_url(env)
        return env

    def _with_map_url(self, env: Environment) -> Environment:
        """Publish the floor-plan image under the media root (replacing an older one)."""
        image = env.floor_map.image
        if self._media is None or image is None or not image.is_file():
            return env
        rel = Path("environments", env.environment_id, "floor_map" + image.suffix.lower())
        url = self._media.publish(image, rel, replace=True)
        return dataclasses.replace(env, floor_map=dataclasses.replace(env.floor_map, image_url=url))


def _new_camera(spec: CameraSpec, source_dir: Path | None) -> Camera:
    cam_id = require_id(spec.camera_id, "camera_id")
    where = f"camera {cam_id!r}"
    homography = _homography(spec.homography, where) if spec.homography is not None else None
    sub_videos, probed = scan_sub_videos(source_dir, cam_id) if source_dir else ((), None)
    width, height, fps = _size(spec.width, "width", where), _size(spec.height, "height", where), spec.fps
    if probed is not None:
        width, height, fps = width or probed[0], height or probed[1], fps or probed[2]
    return Camera(cam_id, spec.name or cam_id, _positive_fps(fps, where), width, height, homography, sub_videos)


def _homography(spec: HomographySpec, where: str) -> Homography:
    try:
        return spec.build()
    except InvalidArgument as exc:
        raise InvalidArgument(f"{where}: {exc}") from exc


def _positive_fps(fps: float, where: str) -> float:
    if not (math.isfinite(fps) and fps > 0):
        raise InvalidArgument(f"{where}: fps must be a number above 0, got {fps}")
    return float(fps)


def _size(value: int, what: str, where: str) -> int:
    if value < 0:
        raise InvalidArgument(f"{where}: {what} must be 0 (unknown) or more pixels, got {value}")
    return int(value)


def _non_negative(value: float, what: str) -> float:
    if not (math.isfinite(value) and value >= 0):
        raise InvalidArgument(f"{what} must be 0 (unknown) or more, got {value}")
    return float(value)
