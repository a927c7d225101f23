"""The environment catalogue: registered environments, with their homographies cached.

PostgreSQL is the record; the in-memory cache is filled at start-up and on every change,
so tasks and health never parse homographies on the frame path. Changes are serialised by
one lock, so a create cannot race another create of the same id in this process.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol, TypeVar

from spoton_inference.domain.camera_source import CameraSource, SourceInput, resolve_source
from spoton_inference.domain.camera_summary import CameraSummary, summarize
from spoton_inference.domain.environment import (
    Camera,
    CameraGroup,
    Environment,
    EnvironmentOrigin,
    FloorMap,
    SubVideo,
    is_bucket_uri,
    require_id,
    shown_uri,
)
from spoton_inference.domain.errors import AlreadyExists, FailedPrecondition, InvalidArgument, InvalidFields, NotFound
from spoton_inference.domain.geometry import HomographySpec
from spoton_inference.domain.scoping import require_creatable, visible
from spoton_inference.domain.tasks import TaskRecord
from spoton_inference.services.audit import Audit, AuditAction, audited
from spoton_inference.services.source_policy import SourcePolicy, SourceRefused

# Unfinished tasks over an environment; deleting what they use is refused.
InUse = Callable[[str], Awaitable[list[TaskRecord]]]
T = TypeVar("T")
# Under the media root: environments/<id>/floor_map.<ext>.
MEDIA_DIR = "environments"
log = logging.getLogger(__name__)
MAX_LOCATION_CHARS = 500
MAX_NAME_CHARS = 200


@dataclasses.dataclass(frozen=True, slots=True)
class CameraSpec:
    """A new camera; a zero fps/width/height is read from its sub-videos when there are any."""

    camera_id: str
    name: str = ""
    fps: float = 0.0
    width: int = 0
    height: int = 0
    homography: HomographySpec | None = None
    # "": in no group.
    group_id: str = ""
    # None: FILE when the camera has sub-videos, else PUSH.
    source: SourceInput | None = None
    detection_threshold: float | None = None
    location: str = ""
    enabled: bool = True


@dataclasses.dataclass(frozen=True, slots=True)
class CameraPatch:
    """Changes to a camera; ``None`` leaves a field as it is."""

    name: str | None = None
    fps: float | None = None
    width: int | None = None
    height: int | None = None
    homography: HomographySpec | None = None
    clear_homography: bool = False
    # "": out of any group.
    group_id: str | None = None
    source: SourceInput | None = None
    detection_threshold: float | None = None
    clear_detection_threshold: bool = False
    location: str | None = None
    enabled: bool | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class GroupPatch:
    name: str | None = None
    description: str | None = None


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


class EnvironmentRows(Protocol):
    """Environments and their cameras as stored (storage/postgres.Database)."""

    async def list_environments(self) -> list[Environment]: ...
    async def upsert_environment(self, env: Environment) -> None: ...


class CatalogRecords(Protocol):
    """Deleting environments, and camera groups (storage/catalog_store.CatalogStore)."""

    async def delete_environment(self, environment_id: str) -> bool: ...
    async def list_groups(self) -> dict[str, tuple[CameraGroup, ...]]: ...
    async def upsert_group(self, environment_id: str, group: CameraGroup) -> None: ...
    async def delete_group(self, environment_id: str, group_id: str) -> None: ...


class HealthStatuses(Protocol):
    """Each camera's newest health status (storage/camera_health_store.CameraHealthStore)."""

    async def latest_statuses(self) -> dict[tuple[str, str], str]: ...


# A camera's sub-videos in an environment directory and, when there are any, their
# (width, height, fps); InvalidArgument when they do not decode (files/environment_dir.scan_sub_videos).
SubVideoScan = Callable[[Path, str], tuple[tuple[SubVideo, ...], tuple[int, int, float] | None]]


class EnvironmentFiles(Protocol):
    """Environment directories on disk (the module files/environment_dir satisfies it)."""

    def load_environment_dir(self, path: Path | str) -> Environment: ...
    def floor_map_image(self, env_dir: Path, name: object) -> Path: ...
    def scan_sub_videos(
        self, env_dir: Path, camera_id: str
    ) -> tuple[tuple[SubVideo, ...], tuple[int, int, float] | None]: ...


# Loads the environment at s3://bucket/prefix, its sub-videos probed in place and carrying
# their objects (files/bucket_environment.load_bucket_environment, bound to the object store).
BucketEnvironments = Callable[[str], Awaitable[Environment]]


class VideoPrefetch(Protocol):
    def prefetch(self, src: Path) -> object: ...


class MediaPublisher(Protocol):
    """Where files are served to browsers (files/media.MediaRoot)."""

    @property
    def root(self) -> Path: ...
    @property
    def videos(self) -> VideoPrefetch | None: ...
    def publish(self, src: Path, rel: Path, *, replace: bool = False, copy: bool = False) -> str: ...
    def unpublish(self, rel: Path) -> None: ...


class Catalog:
    def __init__(
        self,
        environments: EnvironmentRows,
        store: CatalogRecords,
        health: HealthStatuses,
        files: EnvironmentFiles,
        in_use: InUse = _nothing_in_use,
        media: MediaPublisher | None = None,
        audit: Audit | None = None,
        source_policy: SourcePolicy | None = None,
        on_change: Callable[[str], None] | None = None,
        buckets: BucketEnvironments | None = None,
    ) -> None:
        self._environments = environments
        # None: registering from object storage is not set up (s3:// paths are refused).
        self._buckets = buckets
        self._store = store
        self._health = health
        self._files = files
        self._audit = audit
        # Told the id of every environment this replica changed, once stored (other replicas
        # reload: storage/catalog_sync.py); set by the app once its sync exists.
        self.on_change = on_change
        self._in_use = in_use
        # Floor-plan images are published here so browsers can load them; None: not served.
        self._media = media
        # Where live sources may point (services/source_policy.py); checked on every stored change.
        self._source_policy = source_policy or SourcePolicy()
        self._cache: dict[str, Environment] = {}
        self._lock = asyncio.Lock()
        self.loaded = False

    async def load(self) -> None:
        groups = await self._store.list_groups()
        self._cache = {
            e.environment_id: self._with_map_url(dataclasses.replace(e, groups=groups.get(e.environment_id, ())))
            for e in await self._environments.list_environments()
        }
        self.loaded = True

    async def reload(self) -> None:
        """Re-read the catalogue from PostgreSQL (another replica changed it)."""
        async with self._lock:
            await self.load()

    @audited(
        AuditAction.ENVIRONMENT_REGISTER,
        lambda path, **_: _register_target(path),
        lambda env: _env_target(env.environment_id),
    )
    async def register_directory(self, path: str, *, origin: EnvironmentOrigin = EnvironmentOrigin.SITE) -> Environment:
        """Register (or replace) the environment in directory ``path``, or at ``s3://bucket/prefix``
        in object storage; jobs pass JOB as ``origin``."""
        if is_bucket_uri(path):
            if self._buckets is None:
                raise FailedPrecondition(
                    f"{shown_uri(path)!r}: this server is not set up to read environments from object storage"
                )
            loaded = await self._buckets(path)
        else:
            loaded = self._files.load_environment_dir(path)
        env = dataclasses.replace(loaded, origin=origin)
        require_creatable(env.environment_id, "an environment")
        if env.num_batches == 0:
            raise InvalidArgument(f"{env.source} has no cameras/<id>/sub_video_NN.mp4 files")
        async with self._lock:
            previous = self._cache.get(env.environment_id)
            # Groups are kept apart from the directory's contents: replacing the cameras keeps them.
            if previous is not None:
                env = dataclasses.replace(env, groups=previous.groups)
            env = await self._save(env)
        if self._media is not None and self._media.videos is not None:
            # Browser-playable copies are made in the background from now on, so a task's media
            # is ready sooner; a task awaits the copy its media needs (MediaRoot.publish_video).
            # Those in object storage are not local yet: the task fetching them takes care of them.
            for sub in (sub for camera in env.cameras for sub in camera.sub_videos if sub.remote is None):
                self._media.videos.prefetch(sub.path)
        return env

    def list(self, origin: EnvironmentOrigin | None = None) -> list[Environment]:
        """The environments the caller may see (domain/scoping.py); only those of ``origin`` when given."""
        return [self._cache[k] for k in sorted(self._cache) if visible(k) and origin in (None, self._cache[k].origin)]

    def get(self, environment_id: str) -> Environment:
        env = self._cache.get(environment_id)
        if env is None or not visible(environment_id):
            # Only those the caller may see are named: a scoped caller learns nothing of the others.
            known = ", ".join(e.environment_id for e in self.list()) or "none registered"
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

    @audited(AuditAction.ENVIRONMENT_CREATE, lambda spec: _env_target(spec.environment_id))
    async def create_environment(self, spec: EnvironmentSpec) -> Environment:
        env_id = require_id(spec.environment_id, "environment_id")
        require_creatable(env_id, "an environment")
        metres_per_pixel = _non_negative(spec.metres_per_pixel, "metres_per_pixel")
        ids = [c.camera_id for c in spec.cameras]
        if len(set(ids)) != len(ids):
            raise InvalidArgument(f"camera ids must be unique within the environment, got {ids}")
        env = Environment(env_id, spec.name or env_id, FloorMap(None, metres_per_pixel), ())
        scan = self._files.scan_sub_videos
        env = dataclasses.replace(env, cameras=tuple(new_camera(c, env, scan) for c in spec.cameras))
        async with self._lock:
            if env_id in self._cache:
                raise AlreadyExists(f"environment {env_id!r} already exists; update it or pick another id")
            return await self._save(env)

    @audited(AuditAction.ENVIRONMENT_UPDATE, lambda environment_id, patch: _env_target(environment_id))
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

    @audited(AuditAction.ENVIRONMENT_DELETE, lambda environment_id: _env_target(environment_id))
    async def delete_environment(self, environment_id: str) -> None:
        async with self._lock:
            self.get(environment_id)
            busy = await self._in_use(environment_id)
            if busy:
                raise FailedPrecondition(
                    f"environment {environment_id!r} has unfinished tasks {[t.task_id for t in busy]}; "
                    "cancel them (ControlTask) or wait for them to end, then delete it"
                )
            await self._store.delete_environment(environment_id)
            del self._cache[environment_id]
            if self._media is not None:  # its floor plan is served no longer
                self._media.unpublish(Path(MEDIA_DIR, environment_id))
            self._announce(environment_id)

    @audited(AuditAction.CAMERA_CREATE, lambda environment_id, spec: _camera_target(environment_id, spec.camera_id))
    async def create_camera(self, environment_id: str, spec: CameraSpec) -> Camera:
        async with self._lock:
            env = self.get(environment_id)
            if env.camera(spec.camera_id) is not None:
                raise AlreadyExists(
                    f"camera {spec.camera_id!r} already exists in environment {environment_id!r}; update it instead"
                )
            camera = new_camera(spec, env, self._files.scan_sub_videos)
            await self._save(dataclasses.replace(env, cameras=(*env.cameras, camera)))
        return camera

    @audited(
        AuditAction.CAMERA_UPDATE, lambda environment_id, camera_id, patch: _camera_target(environment_id, camera_id)
    )
    async def update_camera(self, environment_id: str, camera_id: str, patch: CameraPatch) -> Camera:
        async with self._lock:
            env = self.get(environment_id)
            camera = patched_camera(self.camera(environment_id, camera_id), patch, env)
            cameras = tuple(camera if c.camera_id == camera_id else c for c in env.cameras)
            await self._save(dataclasses.replace(env, cameras=cameras))
        return camera

    @audited(AuditAction.CAMERA_DELETE, lambda environment_id, camera_id: _camera_target(environment_id, camera_id))
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

    @audited(AuditAction.CAMERA_IMPORT, lambda environment_id, edit: _env_target(environment_id) + "/cameras")
    async def edit_cameras(
        self, environment_id: str, edit: Callable[[Environment], tuple[Camera, ...] | None]
    ) -> Environment:
        """Store the cameras ``edit`` makes of the environment, in one transaction (None: nothing).

        ``edit`` runs under the catalogue's lock, so nothing changes the cameras in between.
        """
        async with self._lock:
            env = self.get(environment_id)
            cameras = edit(env)
            if cameras is None:
                return env
            return await self._save(dataclasses.replace(env, cameras=cameras))

    async def summary(self) -> CameraSummary:
        """Camera counts per environment and group, with each camera's latest health status."""
        return summarize(self.list(), await self._health.latest_statuses())

    # -- camera groups -------------------------------------------------------------------

    def group(self, environment_id: str, group_id: str) -> CameraGroup:
        env = self.get(environment_id)
        group = env.group(group_id)
        if group is None:
            known = ", ".join(g.group_id for g in env.groups) or "none"
            raise NotFound(f"camera group {group_id!r} not found in environment {environment_id!r} (known: {known})")
        return group

    @audited(AuditAction.GROUP_CREATE, lambda environment_id, group: _group_target(environment_id, group.group_id))
    async def create_group(self, environment_id: str, group: CameraGroup) -> CameraGroup:
        group_id = require_id(group.group_id, "group_id")
        group = CameraGroup(group_id, _group_name(group.name) or group_id, group.description)
        async with self._lock:
            env = self.get(environment_id)
            if env.group(group_id) is not None:
                raise AlreadyExists(
                    f"camera group {group_id!r} already exists in environment {environment_id!r}; update it instead"
                )
            await self._store.upsert_group(environment_id, group)
            self._put(dataclasses.replace(env, groups=(*env.groups, group)))
        return group

    @audited(AuditAction.GROUP_UPDATE, lambda environment_id, group_id, patch: _group_target(environment_id, group_id))
    async def update_group(self, environment_id: str, group_id: str, patch: GroupPatch) -> CameraGroup:
        async with self._lock:
            env = self.get(environment_id)
            group = self.group(environment_id, group_id)
            if patch.name is not None and not patch.name.strip():
                raise InvalidArgument("name must not be blank")
            group = dataclasses.replace(
                group,
                name=_group_name(patch.name) or group.name,
                description=group.description if patch.description is None else patch.description,
            )
            await self._store.upsert_group(environment_id, group)
            groups = tuple(group if g.group_id == group_id else g for g in env.groups)
            self._put(dataclasses.replace(env, groups=groups))
        return group

    @audited(AuditAction.GROUP_DELETE, lambda environment_id, group_id: _group_target(environment_id, group_id))
    async def delete_group(self, environment_id: str, group_id: str) -> None:
        """Delete a group; its cameras stay, in no group (the database does the same: ON DELETE SET NULL)."""
        async with self._lock:
            env = self.get(environment_id)
            self.group(environment_id, group_id)
            await self._store.delete_group(environment_id, group_id)
            cameras = tuple(dataclasses.replace(c, group_id=None) if c.group_id == group_id else c for c in env.cameras)
            groups = tuple(g for g in env.groups if g.group_id != group_id)
            self._put(dataclasses.replace(env, cameras=cameras, groups=groups))

    async def _save(self, env: Environment) -> Environment:
        """Write through: PostgreSQL first, so the cache never holds what was not stored."""
        await self._check_sources(env)
        await self._environments.upsert_environment(env)
        env = self._with_map_url(env)
        self._put(env)
        return env

    def _put(self, env: Environment) -> None:
        self._cache[env.environment_id] = env
        self._announce(env.environment_id)

    def _announce(self, environment_id: str) -> None:
        if self.on_change is not None:
            self.on_change(environment_id)

    @property
    def source_policy(self) -> SourcePolicy:
        return self._source_policy

    async def _check_sources(self, env: Environment) -> None:
        """SourceRefused (naming the camera) for a new or changed live source the policy refuses."""
        before = self._cache.get(env.environment_id)
        changed = [
            camera
            for camera in env.cameras
            if camera.source.is_live
            and (before is None or (old := before.camera(camera.camera_id)) is None or old.source != camera.source)
        ]
        # Blocking (host names are resolved): off the event loop, all at once (an import has many).
        results = await asyncio.gather(
            *(asyncio.to_thread(self._source_policy.check, c.source) for c in changed), return_exceptions=True
        )
        for camera, result in zip(changed, results, strict=True):
            if isinstance(result, SourceRefused):
                raise InvalidFields(f"camera {camera.camera_id!r}", result.errors)
            if isinstance(result, BaseException):
                raise result

    def _with_map_url(self, env: Environment) -> Environment:
        """Publish the floor-plan image under the media root (replacing an older one).

        An env that already has its URL (a cached one being edited) was published when it was
        read or registered, so it is not copied again on every write.
        """
        image = env.floor_map.image
        if self._media is None or image is None or env.floor_map.image_url or env.source_dir is None:
            return env
        published = Path(MEDIA_DIR, env.environment_id)
        # Versions before the copy hard-linked the image here, which the link check below would
        # count against it: that link is ours, so it goes first.
        for old in (self._media.root / published).glob("floor_map.*"):
            with contextlib.suppress(OSError):
                if old.samefile(image):
                    old.unlink()
        try:  # checked again: a row stored before the check existed may name any file
            image = self._files.floor_map_image(env.source_dir, str(image))
        except InvalidArgument as exc:
            log.warning("environment %r: floor-plan image not served: %s", env.environment_id, exc)
            self._media.unpublish(published)  # nor left served from before
            return env
        rel = published / ("floor_map" + image.suffix.lower())
        # Copied, not hard-linked: the image stays single-linked, as registration requires.
        url = self._media.publish(image, rel, replace=True, copy=True)
        return dataclasses.replace(env, floor_map=dataclasses.replace(env.floor_map, image_url=url))


def _register_target(path: str) -> str:
    """The audit target of a registration: what it read, with any credentials pasted into a URI masked."""
    return f"bucket/{shown_uri(path)}" if is_bucket_uri(path) else f"directory/{path}"


def _env_target(environment_id: str) -> str:
    return f"environment/{environment_id}"


def _camera_target(environment_id: str, camera_id: str) -> str:
    return f"environment/{environment_id}/camera/{camera_id}"


def _group_target(environment_id: str, group_id: str) -> str:
    return f"environment/{environment_id}/group/{group_id}"


class _Checks:
    """Runs a camera's validations field by field, so one answer names every bad field."""

    def __init__(self) -> None:
        self.errors: list[tuple[str, str]] = []

    def run(self, field: str, check: Callable[..., T], *args: Any) -> T | None:
        try:
            return check(*args)
        except InvalidFields as exc:
            self.errors.extend(exc.errors)
        except InvalidArgument as exc:
            self.errors.append((field, str(exc)))
        return None

    def raise_for(self, camera_id: str) -> None:
        if self.errors:
            raise InvalidFields(f"camera {camera_id!r}", self.errors)


# Names of the REST routes beside /environments/{env}/cameras/{camera_id}: a camera by one of
# these names could not be fetched there.
RESERVED_CAMERA_IDS = frozenset({"import", "export"})


def require_camera_id(value: object) -> str:
    camera_id = require_id(value, "camera_id")
    if camera_id in RESERVED_CAMERA_IDS:
        raise InvalidArgument(f"camera_id {camera_id!r} is reserved (a REST route has that name); choose another")
    return camera_id


def new_camera(spec: CameraSpec, env: Environment, scan_sub_videos: SubVideoScan) -> Camera:
    """Validate a new camera of ``env``; its sub-videos are found under the environment's directory."""
    checks = _Checks()
    cam_id = spec.camera_id
    if checks.run("camera_id", require_camera_id, cam_id) is None:
        checks.raise_for(cam_id)
    homography = checks.run("homography", HomographySpec.build, spec.homography) if spec.homography else None
    found = checks.run("sub_videos", scan_sub_videos, env.source_dir, cam_id) if env.source_dir else None
    sub_videos, probed = found or ((), None)
    width, height, fps = spec.width, spec.height, spec.fps
    if probed is not None:
        width, height, fps = width or probed[0], height or probed[1], fps or probed[2]
    default_source = CameraSource.default_for(sub_videos)
    camera = Camera(
        cam_id,
        spec.name or cam_id,
        checks.run("fps", _positive_fps, fps) or 0.0,
        checks.run("width", _size, width, "width") or 0,
        checks.run("height", _size, height, "height") or 0,
        homography,
        sub_videos,
        group_id=checks.run("group_id", _group_of, env, spec.group_id),
        source=checks.run("source", resolve_source, spec.source, None) if spec.source else default_source,
        detection_threshold=checks.run("detection_threshold", _threshold, spec.detection_threshold),
        location=checks.run("location", _location, spec.location) or "",
        enabled=spec.enabled,
    )
    checks.raise_for(cam_id)
    return camera


def patched_camera(camera: Camera, patch: CameraPatch, env: Environment) -> Camera:
    """``camera`` of ``env`` with ``patch`` applied and validated."""
    checks = _Checks()
    if patch.homography is not None and patch.clear_homography:
        checks.errors.append(("homography", "set either a new homography or clear_homography, not both"))
    if patch.detection_threshold is not None and patch.clear_detection_threshold:
        checks.errors.append(
            ("detection_threshold", "set either a detection_threshold or clear_detection_threshold, not both")
        )
    if patch.name is not None and not patch.name.strip():
        checks.errors.append(("name", "name must not be blank"))
    changes: dict[str, Any] = {"name": patch.name or camera.name}
    if patch.clear_homography:
        changes["homography"] = None
    elif patch.homography is not None:
        changes["homography"] = checks.run("homography", HomographySpec.build, patch.homography)
    if patch.fps is not None:
        changes["fps"] = checks.run("fps", _positive_fps, patch.fps)
    if patch.width is not None:
        changes["width"] = checks.run("width", _size, patch.width, "width")
    if patch.height is not None:
        changes["height"] = checks.run("height", _size, patch.height, "height")
    if patch.group_id is not None:
        changes["group_id"] = checks.run("group_id", _group_of, env, patch.group_id)
    if patch.source is not None:
        changes["source"] = checks.run("source", resolve_source, patch.source, camera.source)
    if patch.clear_detection_threshold:
        changes["detection_threshold"] = None
    elif patch.detection_threshold is not None:
        changes["detection_threshold"] = checks.run("detection_threshold", _threshold, patch.detection_threshold)
    if patch.location is not None:
        changes["location"] = checks.run("location", _location, patch.location)
    if patch.enabled is not None:
        changes["enabled"] = patch.enabled
    checks.raise_for(camera.camera_id)
    return dataclasses.replace(camera, **changes)


def _group_of(env: Environment, group_id: str) -> str | None:
    if not group_id:
        return None
    if env.group(group_id) is None:
        known = ", ".join(g.group_id for g in env.groups) or "none"
        raise InvalidArgument(
            f"group_id {group_id!r} is not a camera group of environment {env.environment_id!r} "
            f"(known: {known}); create the group first"
        )
    return group_id


def _threshold(value: float | None) -> float | None:
    if value is not None and not (math.isfinite(value) and 0 <= value <= 1):
        raise InvalidArgument(f"detection_threshold must be between 0 and 1, got {value}")
    return value


def _location(value: str) -> str:
    if len(value) > MAX_LOCATION_CHARS:
        raise InvalidArgument(f"location must be at most {MAX_LOCATION_CHARS} characters, got {len(value)}")
    return value


def _positive_fps(fps: float) -> float:
    if not (math.isfinite(fps) and fps > 0):
        raise InvalidArgument(f"fps must be a number above 0, got {fps}")
    return float(fps)


def _size(value: int, what: str) -> int:
    if value < 0:
        raise InvalidArgument(f"{what} must be 0 (unknown) or more pixels, got {value}")
    return int(value)


def _group_name(name: str | None) -> str | None:
    if name is not None and len(name) > MAX_NAME_CHARS:
        raise InvalidArgument(f"name must be at most {MAX_NAME_CHARS} characters, got {len(name)}")
    return name


def _non_negative(value: float, what: str) -> float:
    if not (math.isfinite(value) and value >= 0):
        raise InvalidArgument(f"{what} must be 0 (unknown) or more, got {value}")
    return float(value)
