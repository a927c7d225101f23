"""The benchmark suite: fixed names, seeds and order, and the cached command line."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from spoton_inference.scenes import SceneConfig, suite
from spoton_inference.scenes.environment import homography_pairs
from spoton_inference.scenes.generate import build_cameras

#: Benchmarks keep results by these names and seeds: changing them is a new suite.
EXPECTED = [
    ("s1-easy-overlap", 101),
    ("s2-mild-crossings", 203),
    ("s3-corridor-handover", 303),
    ("s4-lookalike-crossings", 404),
    ("s5-occluded-dim-drops", 505),
    ("s6-hard-crowd", 606),
]


def test_names_seeds_and_order_are_fixed():
    scenes = suite.suite()
    assert [(name, config.seed) for name, config in scenes] == EXPECTED
    assert suite.EASY == tuple(name for name, _ in scenes[: len(scenes) // 2])
    assert [config.env_id for _, config in scenes] == [name for name, _ in scenes]
    assert suite.suite() == scenes  # built afresh, the same every time


@pytest.mark.parametrize(("name", "config"), suite.suite())
def test_every_scene_is_small_and_calibrated(name: str, config: SceneConfig):
    assert 3 <= len(config.cameras) <= 4
    assert all(camera.width <= 640 and camera.height <= 480 for camera in config.cameras)
    assert config.fps == 10 and config.n_batches == 2 and 60 <= config.frames_per_batch <= 100
    for camera in build_cameras(config).values():
        homography_pairs(camera, config.world_size)  # raises when a camera sees too little floor


def test_hard_half_turns_up_the_knobs():
    """The easy half has no occluders, dim light, drops or look-alikes; the last scene has them all."""
    configs = dict(suite.suite())
    for name in suite.EASY:
        config = configs[name]
        assert not config.occluders and config.light_level == 1.0
        assert config.frame_drop_probability == 0.0 and config.similar_clothes == 0.0
    hardest = configs["s6-hard-crowd"]
    assert hardest.people_per_100m2 == max(config.people_per_100m2 for config in configs.values())
    assert hardest.occluders and hardest.light_level < 1 and hardest.frame_drop_probability > 0
    assert hardest.similar_clothes > 0 and hardest.crossing_fraction > 0


def test_describe_names_the_knobs():
    configs = dict(suite.suite())
    assert suite.describe(configs["s1-easy-overlap"]) == "3 cameras, 5 people (4.0 per 100 m²), 2 x 80 frames"
    assert "4 occluders, light 0.5, noise 4, drops 5%" in suite.describe(configs["s5-occluded-dim-drops"])


def test_config_hash_follows_the_config():
    config = dict(suite.suite())["s1-easy-overlap"]
    assert suite.config_hash(config) == suite.config_hash(replace(config))
    assert suite.config_hash(config) != suite.config_hash(replace(config, light_level=0.9))


@pytest.fixture
def fake_generate(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Replace the renderer: record scene names, write one file per scene."""
    generated: list[str] = []

    def generate(config: SceneConfig, out_dir: Path) -> Path:
        generated.append(config.env_id)
        out_dir.mkdir(parents=True)
        (out_dir / "environment.json").write_text(config.env_id)
        return out_dir

    monkeypatch.setattr(suite, "generate", generate)
    return generated


def test_build_generates_once_then_keeps(tmp_path: Path, fake_generate: list[str]):
    first = suite.build(tmp_path)
    assert list(first) == fake_generate == [name for name, _ in suite.suite()]
    assert all(seconds is not None for seconds in first.values())
    for name, config in suite.suite():
        assert (tmp_path / name / suite.HASH_FILE).read_text().strip() == suite.config_hash(config)
    assert set(suite.build(tmp_path).values()) == {None}
    assert len(fake_generate) == len(first)


def test_build_regenerates_a_changed_or_unfinished_scene(
    tmp_path: Path, fake_generate: list[str], monkeypatch: pytest.MonkeyPatch
):
    suite.build(tmp_path)
    fake_generate.clear()
    (tmp_path / "s2-mild-crossings" / suite.HASH_FILE).unlink()  # as if interrupted
    (tmp_path / "s2-mild-crossings" / "stale.txt").write_text("left over")
    changed = [
        (name, replace(config, n_people=3) if name == "s4-lookalike-crossings" else config)
        for name, config in suite.suite()
    ]
    monkeypatch.setattr(suite, "suite", lambda: changed)
    suite.build(tmp_path)
    assert fake_generate == ["s2-mild-crossings", "s4-lookalike-crossings"]
    assert not (tmp_path / "s2-mild-crossings" / "stale.txt").exists()


def test_build_only_some_and_refuse_unknown_names(tmp_path: Path, fake_generate: list[str]):
    assert list(suite.build(tmp_path, only=("s3-corridor-handover",))) == ["s3-corridor-handover"]
    with pytest.raises(ValueError, match="s9-nope"):
        suite.build(tmp_path, only=("s9-nope",))


def test_cli_prints_a_line_per_scene(tmp_path: Path, fake_generate: list[str], capsys: pytest.CaptureFixture):
    suite.main([str(tmp_path), "--only", "s1-easy-overlap", "s6-hard-crowd"])
    suite.main([str(tmp_path), "--only", "s1-easy-overlap"])
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == ["s1-easy-overlap", "s6-hard-crowd", "s1-easy-overlap"]
    assert "generated in" in lines[0] and "18 people" in lines[1] and "kept" in lines[2]


def test_validation_suite_draws_every_recipe_again_with_other_seeds():
    """Tuning on the validation draws must not touch the suite of record: same knobs, new seeds."""
    fixed, validation = suite.suite(), suite.validation_suite()
    assert len(validation) == len(suite.VALIDATION_DRAWS) * len(fixed)
    seeds = [config.seed for _, config in fixed + validation]
    assert len(set(seeds)) == len(seeds)
    names = [name for name, _ in fixed + validation]
    assert len(set(names)) == len(names)
    recipes = dict(fixed)
    for name, config in validation:
        recipe = name.rsplit("-v", 1)[0]
        assert config.env_id == name
        assert replace(config, seed=0, env_id="", name="") == replace(recipes[recipe], seed=0, env_id="", name="")
        assert suite.is_easy(name) == (recipe in suite.EASY)


def test_cli_builds_the_validation_suite(tmp_path: Path, fake_generate: list[str]):
    suite.main([str(tmp_path), "--suite", "validation", "--only", "s6-hard-crowd-v2"])
    assert fake_generate == ["s6-hard-crowd-v2"]
    with pytest.raises(ValueError, match="s6-hard-crowd"):
        suite.build(tmp_path, only=("s6-hard-crowd",), scenes=suite.validation_suite())
