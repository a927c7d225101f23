"""Per-environment scoping: a principal limited to some environments sees nothing of the others.

Entities out of scope answer NotFound exactly as missing ones do, so their existence does not
leak; creating out of scope answers PermissionDenied.
"""

from __future__ import annotations

import contextlib
import dataclasses
import uuid
from collections.abc import Iterator

import pytest

from spoton_inference.domain.errors import NotFound, PermissionDenied
from spoton_inference.domain.principal import Principal, Role, reset_current_principal, set_current_principal
from spoton_inference.services.catalog import CameraSpec, EnvironmentPatch, EnvironmentSpec
from spoton_inference.services.jobs import UploadRequest
from spoton_inference.services.tasks import TaskAction
from spoton_inference.storage.task_store import TaskStore

from .services import services

HALL_VIEWER = Principal("kiosk", Role.VIEWER, frozenset({"scope-hall"}), "key-kiosk", "api_key")
HALL_ADMIN = Principal("hall-admin", Role.ADMIN, frozenset({"scope-hall"}), "key-hall-admin", "api_key")
HALL_OPERATOR = dataclasses.replace(HALL_VIEWER, role=Role.OPERATOR)
ADMIN = Principal("root", Role.ADMIN, frozenset(), "key-root", "api_key")


@contextlib.contextmanager
def acting_as(principal: Principal) -> Iterator[None]:
    token = set_current_principal(principal)
    try:
        yield
    finally:
        reset_current_principal(token)


@pytest.fixture(scope="module")
async def world(db, make_data_dir):
    s = services(db, make_data_dir("scoping"))
    for env_id in ("scope-hall", "scope-yard"):
        await s.catalog.create_environment(
            EnvironmentSpec(env_id, env_id, cameras=(CameraSpec("c1", fps=10.0, width=64, height=48),))
        )
    # Task rows beside each other, as starts with allow_concurrent make them.
    hall = [(await TaskStore(db).insert_task("scope-hall", ["c1"], 10, concurrent=True)).task_id for _ in range(3)]
    yard = (await TaskStore(db).insert_task("scope-yard", ["c1"], 10)).task_id
    return s, hall, yard


async def test_a_scoped_caller_lists_only_its_environments(world):
    s, hall, _ = world
    with acting_as(HALL_VIEWER):
        assert [e.environment_id for e in s.catalog.list()] == ["scope-hall"]
        rows, token = await s.tasks.list(page_size=2, page_token="", environment_id="", state=None)
        rows2, end = await s.tasks.list(page_size=2, page_token=token, environment_id="", state=None)
        assert {r.task_id for r in rows + rows2} == set(hall) and end == ""
        # Filtering by an environment out of scope: as for one without tasks.
        assert await s.tasks.list(page_size=10, page_token="", environment_id="scope-yard", state=None) == ([], "")
        assert [e.environment_id for e in (await s.catalog.summary()).environments] == ["scope-hall"]


async def test_an_unscoped_caller_sees_every_environment(world):
    s, hall, yard = world
    with acting_as(ADMIN):
        assert {"scope-hall", "scope-yard"} <= {e.environment_id for e in s.catalog.list()}
        rows, _ = await s.tasks.list(page_size=200, page_token="", environment_id="", state=None)
        assert set(hall) | {yard} <= {r.task_id for r in rows}
        assert (await s.tasks.get(yard)).environment_id == "scope-yard"


async def test_what_is_out_of_scope_answers_as_if_it_did_not_exist(world):
    s, _, yard = world
    with acting_as(HALL_VIEWER):
        missing = str(uuid.uuid4())
        for task_id in (yard, missing):
            with pytest.raises(NotFound) as refused:
                await s.tasks.get(task_id)
            assert str(refused.value) == f"task {task_id!r} not found"
            with pytest.raises(NotFound):
                await s.tasks.control(task_id, TaskAction.CANCEL)
            with pytest.raises(NotFound):
                await s.tasks.exports(task_id)
        with pytest.raises(NotFound) as refused:
            s.catalog.get("scope-yard")
        # The message names the environments that exist, but only those the caller may see.
        assert "scope-hall" in str(refused.value) and "scope-yard" not in str(refused.value).split("(known")[1]
        with pytest.raises(NotFound):
            s.catalog.camera("scope-yard", "c1")
        with pytest.raises(NotFound):
            await s.analytics.list_zones("scope-yard")
        with pytest.raises(NotFound):
            await s.analytics.heatmap("", cell_size_m=1.0, task_id=yard)


async def test_starting_a_task_out_of_scope_answers_not_found(world):
    s, _, _ = world
    with acting_as(HALL_OPERATOR):
        with pytest.raises(NotFound, match="scope-yard"):
            await s.tasks.start("scope-yard", [])


async def test_a_scoped_admin_changes_only_its_environments(world):
    s, _, _ = world
    with acting_as(HALL_ADMIN):
        with pytest.raises(NotFound):
            await s.catalog.update_environment("scope-yard", EnvironmentPatch(name="taken over"))
        with pytest.raises(NotFound):
            await s.catalog.delete_camera("scope-yard", "c1")
        with pytest.raises(PermissionDenied, match="limited to environments"):
            await s.catalog.create_environment(EnvironmentSpec("scope-new", "New"))
        updated = await s.catalog.update_environment("scope-hall", EnvironmentPatch(name="Main hall"))
        assert updated.name == "Main hall"


async def test_a_scoped_caller_cannot_upload_a_job_nor_see_jobs(world):
    s, _, _ = world
    with acting_as(HALL_OPERATOR):

        async def chunks():
            yield b"never read"

        with pytest.raises(PermissionDenied, match="upload"):
            await s.jobs.upload(UploadRequest("clip.mp4"), chunks())
        assert await s.jobs.list(page_size=10, page_token="", state=None) == ([], "")
