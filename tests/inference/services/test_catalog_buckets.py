"""Registering s3://bucket/prefix through the catalogue: the path goes to the bucket loader (its
port), the environment is stored with its bucket and each sub-video's object, and comes back so
after a restart (read from PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import pytest

from spoton_inference.domain.environment import BucketSource, Camera, Environment, FloorMap, RemoteObject, SubVideo
from spoton_inference.domain.errors import FailedPrecondition, InvalidArgument
from spoton_inference.files import environment_dir
from spoton_inference.services.audit import Audit, AuditEvent
from spoton_inference.services.catalog import Catalog
from spoton_inference.storage.camera_health_store import CameraHealthStore
from spoton_inference.storage.catalog_store import CatalogStore
from spoton_inference.storage.environment_store import EnvironmentStore

SOURCE = BucketSource("rec", "sites/lobby")


def _remote_env(env_id: str, batches: int = 2) -> Environment:
    subs = tuple(
        SubVideo(
            Path(f"/cache/rec/sites/lobby/cameras/c1/sub_video_{n:02d}.mp4@e{n}"),
            10 * n,
            remote=RemoteObject("rec", f"sites/lobby/cameras/c1/sub_video_{n:02d}.mp4", 1000 + n, f"e{n}"),
        )
        for n in range(1, batches + 1)
    )
    camera = Camera("c1", "c1", 10.0, 64, 48, None, subs)
    return Environment(env_id, "Lobby", FloorMap(metres_per_pixel=0.1), (camera,), bucket=SOURCE)


class Loader:
    """The bucket loader's port: records the URIs asked for."""

    def __init__(self, env: Environment) -> None:
        self.env, self.asked = env, []

    async def __call__(self, uri: str) -> Environment:
        self.asked.append(uri)
        return self.env


class AuditLog:
    """The audit store's port, in memory."""

    def __init__(self) -> None:
        self.events: list[AuditEvent] = []

    async def record(self, event: AuditEvent) -> None:
        self.events.append(event)


def _catalog(db, loader=None, audit: Audit | None = None) -> Catalog:
    return Catalog(
        EnvironmentStore(db), CatalogStore(db), CameraHealthStore(db), environment_dir, buckets=loader, audit=audit
    )


async def test_a_bucket_environment_is_stored_with_its_objects_and_read_back(db):
    loader = Loader(_remote_env("bucket-env"))
    catalog = _catalog(db, loader)
    await catalog.load()
    env = await catalog.register_directory("s3://rec/sites/lobby")
    assert loader.asked == ["s3://rec/sites/lobby"]
    assert env.source == "s3://rec/sites/lobby"

    restarted = _catalog(db)
    await restarted.load()
    back = restarted.get("bucket-env")
    assert back.bucket == SOURCE and back.source_dir is None and back.source == "s3://rec/sites/lobby"
    assert back.cameras[0].sub_videos == env.cameras[0].sub_videos  # paths, frame counts and objects


async def test_a_bucket_environment_without_sub_videos_is_refused_naming_its_uri(db):
    catalog = _catalog(db, Loader(_remote_env("empty-env", batches=0)))
    await catalog.load()
    with pytest.raises(InvalidArgument, match=r"s3://rec/sites/lobby has no cameras/<id>/sub_video_NN\.mp4"):
        await catalog.register_directory("s3://rec/sites/lobby")


async def test_s3_paths_are_refused_where_object_storage_is_not_set_up_and_credentials_never_echoed(db):
    log = AuditLog()
    catalog = _catalog(db, audit=Audit(log, retention_days=1))  # type: ignore[arg-type]
    await catalog.load()
    with pytest.raises(FailedPrecondition, match="not set up to read environments from object storage") as caught:
        await catalog.register_directory("s3://key:secret@rec/site")
    assert "secret" not in str(caught.value)
    # The audit trail names what was asked for, with the pasted credential masked.
    assert [(e.action, e.target) for e in log.events] == [("environment.register", "bucket/s3://***@rec/site")]
