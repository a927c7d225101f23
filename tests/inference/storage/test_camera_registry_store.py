"""Migration 0006 on a database with cameras from before it, and the cameras' latest health status."""

from __future__ import annotations

import shutil
import uuid

import asyncpg
import pytest

from spoton_inference.storage.camera_health_store import CameraHealthStore
from spoton_inference.storage.environment_store import EnvironmentStore
from spoton_inference.storage.migrate import MIGRATIONS_DIR, migrate
from spoton_inference.storage.postgres import Database

REGISTRY_VERSION = 6


@pytest.fixture
async def dsn(postgres):
    name = f"registry_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(postgres.dsn_for("postgres"))
    try:
        await admin.execute(f"CREATE DATABASE {name}")
    finally:
        await admin.close()
    return postgres.dsn_for(name)


async def test_cameras_from_before_the_registry_get_a_source_kind(dsn, tmp_path):
    for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
        if int(path.name[:4]) < REGISTRY_VERSION:
            shutil.copy(path, tmp_path / path.name)
    conn = await asyncpg.connect(dsn)
    try:
        await migrate(conn, tmp_path)
        await conn.execute("INSERT INTO environments (environment_id, name) VALUES ('old', 'Old')")
        await conn.execute(
            """INSERT INTO cameras (environment_id, camera_id, name, fps, width, height, sub_videos, position)
               VALUES ('old', 'files', 'Files', 10, 0, 0, '[{"path": "/x/sub_video_01.mp4", "num_frames": 5}]', 0),
                      ('old', 'pushed', 'Pushed', 10, 0, 0, '[]', 1)"""
        )
        assert REGISTRY_VERSION in await migrate(conn)
    finally:
        await conn.close()
    db = await Database.connect(dsn)
    try:
        [env] = await EnvironmentStore(db).list_environments()
        files, pushed = env.cameras
        assert (str(files.source.kind), str(pushed.source.kind)) == ("file", "push")
        assert (files.enabled, files.group_id, files.detection_threshold, files.location) == (True, None, None, "")
        assert not files.source.password_set
    finally:
        await db.close()


async def test_latest_status_per_checked_camera(dsn):
    db = await Database.connect(dsn)
    try:
        async with db.pool.acquire() as conn:
            await conn.execute("INSERT INTO environments (environment_id, name) VALUES ('e', 'E')")
            await conn.execute(
                """INSERT INTO cameras (environment_id, camera_id, name, fps, width, height, position)
                   VALUES ('e', 'a', 'A', 10, 0, 0, 0), ('e', 'b', 'B', 10, 0, 0, 1), ('e', 'c', 'C', 10, 0, 0, 2)"""
            )
            await conn.execute(
                """INSERT INTO camera_health_checks (environment_id, camera_id, checked_at, status) VALUES
                     ('e', 'a', now() - interval '2 minutes', 'offline'),
                     ('e', 'a', now() - interval '1 minute', 'online'),
                     ('e', 'b', now(), 'degraded')"""
            )
        assert await CameraHealthStore(db).latest_statuses() == {("e", "a"): "online", ("e", "b"): "degraded"}
    finally:
        await db.close()
