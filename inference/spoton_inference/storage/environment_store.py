"""Environments and their cameras in PostgreSQL (tables ``environments`` and ``cameras``).

An environment registered from object storage keeps its bucket and prefix (source_bucket,
source_prefix), and each of its sub-videos its object (``remote`` in cameras.sub_videos).

Camera passwords are sealed at rest with the database's :class:`~spoton_inference.services.secrets.SecretBox`
(``storage/camera_secrets.py``): written sealed, opened on reading.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg
import numpy as np

from spoton_inference.domain.camera_source import CameraSource, SourceKind
from spoton_inference.domain.environment import (
    BucketSource,
    Camera,
    Environment,
    EnvironmentOrigin,
    FloorMap,
    RemoteObject,
    SubVideo,
)
from spoton_inference.domain.geometry import Homography
from spoton_inference.services.secrets import SecretBox
from spoton_inference.storage.camera_secrets import open_sealed, seal_source

if TYPE_CHECKING:  # postgres.py imports this module
    from spoton_inference.storage.postgres import Database


class EnvironmentStore:
    """The catalogue's environments, each with its cameras, in one transaction per write."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def upsert_environment(self, env: Environment) -> None:
        async with self._db.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                """INSERT INTO environments (environment_id, name, source_dir, map_image, metres_per_pixel, origin,
                                            source_bucket, source_prefix)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                   ON CONFLICT (environment_id) DO UPDATE SET name = $2, source_dir = $3,
                       map_image = $4, metres_per_pixel = $5, origin = $6, source_bucket = $7,
                       source_prefix = $8, updated_at = now()""",
                env.environment_id,
                env.name,
                str(env.source_dir) if env.source_dir else None,
                str(env.floor_map.image) if env.floor_map.image else None,
                env.floor_map.metres_per_pixel,
                env.origin.value,
                env.bucket.bucket if env.bucket else None,
                env.bucket.prefix if env.bucket else None,
            )
            # Delete the cameras no longer listed, upsert the others. No foreign key points at a camera:
            # its health checks are keyed by id alone and outlive a deleted camera until pruned.
            await conn.execute(
                "DELETE FROM cameras WHERE environment_id = $1 AND NOT camera_id = ANY($2::text[])",
                env.environment_id,
                [c.camera_id for c in env.cameras],
            )
            await conn.executemany(
                """INSERT INTO cameras (environment_id, camera_id, name, fps, width, height,
                                        homography, sub_videos, position, group_id, source_kind, source_url,
                                        source_username, source_password, detection_threshold, location, enabled,
                                        source_secret)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, '', $14, $15, $16, $17)
                   ON CONFLICT (environment_id, camera_id) DO UPDATE SET
                       name = $3, fps = $4, width = $5, height = $6, homography = $7, sub_videos = $8,
                       position = $9, group_id = $10, source_kind = $11, source_url = $12,
                       source_username = $13, source_password = '', detection_threshold = $14,
                       location = $15, enabled = $16, source_secret = $17""",
                [
                    (
                        env.environment_id,
                        c.camera_id,
                        c.name,
                        c.fps,
                        c.width,
                        c.height,
                        json.dumps(_homography_doc(c.homography)) if c.homography else None,
                        json.dumps([_sub_video_doc(s) for s in c.sub_videos]),
                        i,
                        c.group_id,
                        str(c.source.kind),
                        c.source.url,
                        c.source.username,
                        c.detection_threshold,
                        c.location,
                        c.enabled,
                        seal_source(self._db.secrets, c.source),
                    )
                    for i, c in enumerate(env.cameras)
                ],
            )

    async def list_environments(self) -> list[Environment]:
        async with self._db.pool.acquire() as conn:
            envs = await conn.fetch("SELECT * FROM environments ORDER BY environment_id")
            cams = await conn.fetch("SELECT * FROM cameras ORDER BY environment_id, position")
        by_env: dict[str, list[Camera]] = {}
        for row in cams:
            by_env.setdefault(row["environment_id"], []).append(_camera_from_row(row, self._db.secrets))
        return [
            Environment(
                r["environment_id"],
                r["name"],
                FloorMap(Path(r["map_image"]) if r["map_image"] else None, r["metres_per_pixel"]),
                tuple(by_env.get(r["environment_id"], [])),
                Path(r["source_dir"]) if r["source_dir"] else None,
                origin=EnvironmentOrigin(r["origin"]),
                bucket=BucketSource(r["source_bucket"], r["source_prefix"]) if r["source_bucket"] else None,
            )
            for r in envs
        ]


def _sub_video_doc(sub: SubVideo) -> dict[str, object]:
    doc: dict[str, object] = {"path": str(sub.path), "num_frames": sub.num_frames}
    if sub.remote is not None:
        r = sub.remote
        doc["remote"] = {"bucket": r.bucket, "key": r.key, "size": r.size, "etag": r.etag}
    return doc


def _sub_video(doc: dict[str, Any]) -> SubVideo:
    remote = doc.get("remote")
    obj = RemoteObject(remote["bucket"], remote["key"], int(remote["size"]), remote["etag"]) if remote else None
    return SubVideo(Path(doc["path"]), int(doc["num_frames"]), remote=obj)


def _homography_doc(h: Homography) -> dict[str, object]:
    return {
        "matrix": h.matrix.reshape(-1).tolist(),
        "image_points": [list(p) for p in h.image_points],
        "map_points": [list(p) for p in h.map_points],
    }


def _camera_from_row(row: asyncpg.Record, secrets: SecretBox) -> Camera:
    homography = None
    if row["homography"]:
        doc = json.loads(row["homography"])
        homography = Homography.from_matrix(
            np.asarray(doc["matrix"]).reshape(3, 3),
            np.asarray(doc["image_points"]) if doc["image_points"] else None,
            np.asarray(doc["map_points"]) if doc["map_points"] else None,
        )
    subs = tuple(_sub_video(s) for s in json.loads(row["sub_videos"]))
    where = f"camera {row['camera_id']!r} of environment {row['environment_id']!r}"
    password, query = open_sealed(secrets, row["source_secret"], row["source_password"], where)
    source = CameraSource(SourceKind(row["source_kind"]), row["source_url"], row["source_username"], password, query)
    return Camera(
        row["camera_id"],
        row["name"],
        row["fps"],
        row["width"],
        row["height"],
        homography,
        subs,
        group_id=row["group_id"],
        source=source,
        detection_threshold=row["detection_threshold"],
        location=row["location"],
        enabled=row["enabled"],
    )
