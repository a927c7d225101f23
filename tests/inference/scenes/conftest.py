"""Tiny generated scenes, shared by the scene tests (generating takes a few seconds).

``tiny_config`` keeps the demo's cameras and hall but at 320 x 240, with six
people and two batches of five frames; ``tiny_scene`` and ``tiny_scene_again``
are two generations of it with the same seed, ``other_seed_scene`` one with
another seed. ``knobby_config`` is ``tiny_config`` with every difficulty knob
turned up (frames drop often, so a few drops are certain); ``knobby_scene`` and
``knobby_scene_again`` are two generations of it.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from spoton_inference.scenes import SceneConfig, demo_config, generate
from spoton_inference.scenes.suite import HALL_OCCLUDERS


@pytest.fixture(scope="session")
def tiny_config() -> SceneConfig:
    demo = demo_config(seed=11)
    cameras = tuple(replace(camera, width=320, height=240) for camera in demo.cameras)
    return replace(demo, cameras=cameras, n_people=6, frames_per_batch=5, n_batches=2, min_box_height_px=20)


@pytest.fixture(scope="session")
def tiny_scene(tiny_config: SceneConfig, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(tiny_config, tmp_path_factory.mktemp("scene"))


@pytest.fixture(scope="session")
def tiny_scene_again(tiny_config: SceneConfig, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(tiny_config, tmp_path_factory.mktemp("scene_again"))


@pytest.fixture(scope="session")
def other_seed_scene(tiny_config: SceneConfig, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(replace(tiny_config, seed=tiny_config.seed + 1), tmp_path_factory.mktemp("other_seed"))


@pytest.fixture(scope="session")
def knobby_config(tiny_config: SceneConfig) -> SceneConfig:
    return replace(
        tiny_config,
        frames_per_batch=6,
        crossing_fraction=0.5,
        similar_clothes=0.8,
        occluders=HALL_OCCLUDERS,
        light_level=0.5,
        frame_drop_probability=0.3,
    )


@pytest.fixture(scope="session")
def knobby_scene(knobby_config: SceneConfig, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(knobby_config, tmp_path_factory.mktemp("knobby"))


@pytest.fixture(scope="session")
def knobby_scene_again(knobby_config: SceneConfig, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(knobby_config, tmp_path_factory.mktemp("knobby_again"))
