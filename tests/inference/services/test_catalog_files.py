"""Files an environment names are read only from its own directory: the floor-plan attack
(``"map": {"image": "/etc/passwd"}``) and its variants are refused at registration, nothing is
published, and a deleted environment's floor plan is served no more."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from spoton_inference.domain.errors import InvalidArgument
from spoton_inference.files import environment_dir
from spoton_inference.files.media import MediaRoot
from spoton_inference.services.catalog import Catalog
from spoton_inference.storage.camera_health_store import CameraHealthStore
from spoton_inference.storage.catalog_store import CatalogStore
from spoton_inference.storage.environment_store import EnvironmentStore

PNG = cv2.imencode(".png", np.zeros((8, 8, 3), np.uint8))[1].tobytes()


def _environment(directory: Path, env_id: str, image: str | None) -> Path:
    video = directory / "cameras" / "c1" / "sub_video_01.mp4"
    video.parent.mkdir(parents=True)
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 10, (64, 48))
    for i in range(5):
        writer.write(np.full((48, 64, 3), 20 * i, np.uint8))
    writer.release()
    doc = {"id": env_id, "cameras": [{"id": "c1", "fps": 10}], "map": {"image": image} if image else {}}
    (directory / "environment.json").write_text(json.dumps(doc))
    return directory


@pytest.fixture
def media(tmp_path) -> MediaRoot:
    return MediaRoot(tmp_path / "media", "/api/v1/media")


@pytest.fixture
async def catalog(db, media) -> Catalog:
    catalog = Catalog(EnvironmentStore(db), CatalogStore(db), CameraHealthStore(db), environment_dir, media=media)
    await catalog.load()
    return catalog


def _published(media: MediaRoot) -> list[Path]:
    return [p for p in media.root.rglob("*") if p.is_file()] if media.root.exists() else []


async def test_the_floor_plan_attack_is_refused_and_nothing_is_published(catalog, media, tmp_path):
    secret = tmp_path / "outside" / "secret.png"
    secret.parent.mkdir()
    secret.write_bytes(PNG)
    cases = {
        "abs": "/etc/passwd",
        "dotdot": "../outside/secret.png",
        "symlink": "plan.png",
        "hardlink": "linked.png",
    }
    for name, image in cases.items():
        directory = _environment(tmp_path / name, f"attack-{name}", image)
        if name == "symlink":
            (directory / "plan.png").symlink_to(secret)
        if name == "hardlink":
            os.link(secret, directory / "linked.png")
        with pytest.raises(InvalidArgument, match=r"map\.image") as err:
            await catalog.register_directory(str(directory))
        assert "root:" not in str(err.value)
    assert _published(media) == []
    assert [e.environment_id for e in catalog.list() if e.environment_id.startswith("attack-")] == []


async def test_a_floor_plan_inside_the_directory_is_served_until_the_environment_is_deleted(catalog, media, tmp_path):
    directory = _environment(tmp_path / "good", "plan-ok", "plan.png")
    (directory / "plan.png").write_bytes(PNG)
    env = await catalog.register_directory(str(directory))
    [served] = _published(media)
    assert env.floor_map.image_url.endswith("environments/plan-ok/floor_map.png")
    assert served.read_bytes() == PNG
    # Copied, not linked: registering the same directory again still passes the link check.
    assert (directory / "plan.png").stat().st_nlink == 1
    await catalog.register_directory(str(directory))
    await catalog.delete_environment("plan-ok")
    assert _published(media) == []


async def test_a_missing_directory_and_one_without_environment_json_answer_alike(catalog, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    answers = []
    for path in (empty, tmp_path / "no-such-dir", Path("/etc")):
        with pytest.raises(InvalidArgument) as err:
            await catalog.register_directory(str(path))
        answers.append(str(err.value).replace(repr(str(path)), "PATH"))
    assert len(set(answers)) == 1, answers


async def test_a_sub_video_symlinked_from_outside_is_refused(catalog, tmp_path):
    outside = _environment(tmp_path / "elsewhere", "elsewhere", None)
    directory = tmp_path / "linked-videos"
    (directory / "cameras" / "c1").mkdir(parents=True)
    (directory / "cameras" / "c1" / "sub_video_01.mp4").symlink_to(outside / "cameras" / "c1" / "sub_video_01.mp4")
    doc = {"id": "linked-videos", "cameras": [{"id": "c1", "fps": 10}]}
    (directory / "environment.json").write_text(json.dumps(doc))
    with pytest.raises(InvalidArgument, match="symlink leading out"):
        await catalog.register_directory(str(directory))


async def test_rows_from_before_the_check_are_checked_again_on_load(db, media, tmp_path):
    # One environment stored naming a file outside its directory, already published (as an older
    # version did); one whose image an older version hard-linked into the media root.
    stolen = _environment(tmp_path / "stolen", "old-stolen", None)
    linked = _environment(tmp_path / "linked", "old-linked", None)
    (linked / "plan.png").write_bytes(PNG)
    outside = tmp_path / "secret.png"
    outside.write_bytes(PNG)
    catalog = Catalog(EnvironmentStore(db), CatalogStore(db), CameraHealthStore(db), environment_dir)
    await catalog.load()
    for directory, image in ((stolen, outside), (linked, linked / "plan.png")):
        env = await catalog.register_directory(str(directory))
        env = dataclasses.replace(env, floor_map=dataclasses.replace(env.floor_map, image=image))
        await EnvironmentStore(db).upsert_environment(env)
        served = media.root / "environments" / env.environment_id / "floor_map.png"
        served.parent.mkdir(parents=True)
        os.link(image, served)
    fresh = Catalog(EnvironmentStore(db), CatalogStore(db), CameraHealthStore(db), environment_dir, media=media)
    await fresh.load()
    assert not (media.root / "environments" / "old-stolen").exists()
    assert fresh.get("old-stolen").floor_map.image_url == ""
    assert fresh.get("old-linked").floor_map.image_url
    assert (linked / "plan.png").stat().st_nlink == 1  # now a copy
    assert (media.root / "environments" / "old-linked" / "floor_map.png").read_bytes() == PNG
