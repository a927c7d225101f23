"""A fixed suite of seeded scenes, from easy to hard, for benchmarks.

Each scene turns up one or two more difficulty knobs of
:class:`~spoton_inference.scenes.config.SceneConfig` than the one before:

1. ``s1-easy-overlap``: few people, overlapping views, distinct clothes.
2. ``s2-mild-crossings``: more people, some paths crossing on purpose.
3. ``s3-corridor-handover``: a corridor whose four views do not overlap, so
   people are handed over across unseen gaps.
4. ``s4-lookalike-crossings``: people dressed alike, many crossings.
5. ``s5-occluded-dim-drops``: pillars and crates hiding people, a dim hall, noisy
   sensors, cameras freezing on frames.
6. ``s6-hard-crowd``: a dense crowd with all of the above.

:data:`EASY` names the first half. :func:`validation_suite` draws the same six recipes
again with other seeds: tune on it, so that this suite stays a test set (with scenes
this small, one identity error moves a scene's IDF1 by about 0.05). Scenes are small (three or four 640 x 480
cameras at 10 fps, two batches of 60 to 80 frames) so that a benchmark runs the
whole suite quickly; generating it takes about two and a half minutes on two
cores. The project's SSDLite detector (score 0.3, IoU 0.5) finds 75 to 80 % of
the annotated people in the first four scenes and about half in the last two:
occluders, dim light and crowds make it miss people the ground truth holds.

Command line: ``python -m spoton_inference.scenes.suite OUT_DIR [--suite validation] [--only NAME ...]``
writes each scene into ``OUT_DIR/<name>/`` (see :func:`build`).

Example:
    >>> [name for name, _ in suite()][:2], EASY[-1]
    (['s1-easy-overlap', 's2-mild-crossings'], 's3-corridor-handover')
"""

from __future__ import annotations

import argparse
import hashlib
import re
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import fields, replace
from pathlib import Path

from spoton_inference.scenes.config import Occluder, SceneConfig, demo_config
from spoton_inference.scenes.generate import generate
from spoton_inference.scenes.layouts import corridor_cameras

EASY: tuple[str, ...] = ("s1-easy-overlap", "s2-mild-crossings", "s3-corridor-handover")
#: Written into each scene directory: the hash of the config it was generated from.
HASH_FILE = "config.sha256"
#: Part of the hash: bump it when the generator draws differently from the same
#: config, so that stored suites are regenerated.
GENERATOR_VERSION = 1

#: Two pillars, a stack of crates and a counter in the demo hall, where the
#: three demo cameras see people pass behind them.
HALL_OCCLUDERS = (
    Occluder("pillar", (4.5, 4.5), (0.6, 0.6), height_m=4.0, colour=(170, 172, 175)),
    Occluder("pillar", (9.5, 4.5), (0.6, 0.6), height_m=4.0, colour=(170, 172, 175)),
    Occluder("box", (7.0, 2.8), (1.2, 0.8), height_m=1.2, colour=(80, 130, 175)),
    Occluder("box", (7.0, 6.3), (2.0, 0.6), height_m=1.05, colour=(110, 90, 75)),
)


def _hall(name: str, title: str, seed: int, **knobs: object) -> tuple[str, SceneConfig]:
    """A scene in the demo hall, seen by the demo's three cameras."""
    return name, replace(demo_config(seed), env_id=name, name=title, **knobs)


def _corridor(name: str, title: str, seed: int, **knobs: object) -> tuple[str, SceneConfig]:
    """A scene in a 32 m x 7 m corridor with four cameras that do not overlap."""
    length, width = 32.0, 7.0
    config = SceneConfig(
        seed=seed,
        env_id=name,
        name=title,
        world_size=(length, width),
        cameras=corridor_cameras(length, width, 4),
        # Walkers keep to the walkway the cameras see whole, and walk far.
        waypoint_margin_m=2.0,
        min_leg_m=10.0,
    )
    return name, replace(config, **knobs)


def suite() -> list[tuple[str, SceneConfig]]:
    """The scenes as ``(name, config)``, easiest first; names and seeds never change."""
    return [
        _hall("s1-easy-overlap", "Suite 1: easy, overlapping views", 101, n_people=5),
        _hall("s2-mild-crossings", "Suite 2: mild crossings", 203, n_people=8, crossing_fraction=0.25),
        _corridor("s3-corridor-handover", "Suite 3: corridor hand-overs", 303, n_people=10),
        _hall(
            "s4-lookalike-crossings",
            "Suite 4: look-alikes crossing",
            404,
            n_people=10,
            crossing_fraction=0.5,
            similar_clothes=0.85,
        ),
        _hall(
            "s5-occluded-dim-drops",
            "Suite 5: occluders, dim light, frame drops",
            505,
            n_people=10,
            crossing_fraction=0.25,
            occluders=HALL_OCCLUDERS,
            light_level=0.5,
            sensor_noise=4.0,
            frame_drop_probability=0.05,
        ),
        _hall(
            "s6-hard-crowd",
            "Suite 6: dense crowd, everything",
            606,
            n_people=18,
            frames_per_batch=60,
            crossing_fraction=0.5,
            similar_clothes=0.7,
            occluders=HALL_OCCLUDERS,
            light_level=0.6,
            sensor_noise=4.0,
            frame_drop_probability=0.05,
        ),
    ]


#: Seeds of the validation draws: ``s1-easy-overlap`` seed 101 is drawn again as
#: ``s1-easy-overlap-v1`` with seed 1101 and ``-v2`` with 2101.
VALIDATION_DRAWS = (1, 2)


def validation_suite() -> list[tuple[str, SceneConfig]]:
    """The suite's recipes with other seeds, two draws each: for tuning, never for reporting.

    Example:
        >>> [(name, config.seed) for name, config in validation_suite()][:2]
        [('s1-easy-overlap-v1', 1101), ('s1-easy-overlap-v2', 2101)]
    """
    return [
        (
            f"{name}-v{k}",
            replace(config, seed=config.seed + 1000 * k, env_id=f"{name}-v{k}", name=f"{config.name} (draw {k})"),
        )
        for name, config in suite()
        for k in VALIDATION_DRAWS
    ]


#: The suites by name, for the benchmarks' ``--suite``.
SUITES: dict[str, Callable[[], list[tuple[str, SceneConfig]]]] = {"fixed": suite, "validation": validation_suite}


def is_easy(name: str) -> bool:
    """Whether a scene of either suite is a draw of one of the :data:`EASY` recipes.

    Example:
        >>> is_easy("s2-mild-crossings"), is_easy("s2-mild-crossings-v1"), is_easy("s4-lookalike-crossings")
        (True, True, False)
    """
    return re.sub(r"-v\d+$", "", name) in EASY


def _knobs(config: SceneConfig) -> Iterator[str]:
    """The difficulty knobs of ``config`` that differ from the plain demo."""
    plain = SceneConfig()
    if config.crossing_fraction != plain.crossing_fraction:
        yield f"crossings {config.crossing_fraction:g}"
    if config.similar_clothes != plain.similar_clothes:
        yield f"similar clothes {config.similar_clothes:g}"
    if config.occluders:
        yield f"{len(config.occluders)} occluders"
    if config.light_level != plain.light_level:
        yield f"light {config.light_level:g}"
    if config.sensor_noise != plain.sensor_noise:
        yield f"noise {config.sensor_noise:g}"
    if config.frame_drop_probability != plain.frame_drop_probability:
        yield f"drops {config.frame_drop_probability:.0%}"


def describe(config: SceneConfig) -> str:
    """One line on a scene's size and difficulty.

    Example:
        >>> describe(dict(suite())["s2-mild-crossings"])
        '3 cameras, 8 people (6.3 per 100 m²), 2 x 80 frames; crossings 0.25'
    """
    size = (
        f"{len(config.cameras)} cameras, {config.n_people} people ({config.people_per_100m2:.1f} per 100 m²), "
        f"{config.n_batches} x {config.frames_per_batch} frames"
    )
    knobs = ", ".join(_knobs(config))
    return f"{size}; {knobs}" if knobs else size


def config_hash(config: SceneConfig) -> str:
    """Hex SHA-256 of everything that decides a scene's files: the config and :data:`GENERATOR_VERSION`.

    Example:
        >>> config_hash(demo_config(1)) == config_hash(demo_config(1)) != config_hash(demo_config(2))
        True
    """
    # Field by field, so the text does not depend on how the dataclass prints itself.
    text = "\n".join(f"{field.name}={getattr(config, field.name)!r}" for field in fields(config))
    return hashlib.sha256(f"generator {GENERATOR_VERSION}\n{text}".encode()).hexdigest()


def build(
    out_dir: str | Path, only: tuple[str, ...] = (), scenes: Sequence[tuple[str, SceneConfig]] | None = None
) -> dict[str, float | None]:
    """Generate ``scenes`` (default: the suite), or those named in ``only``, into ``out_dir/<name>/``.

    A scene whose directory holds :data:`HASH_FILE` with its config's hash is
    kept as it is; any other directory of that name is replaced. The hash file is
    written last, so an interrupted generation is redone.

    Returns:
        Seconds spent on each scene, ``None`` for those kept.
    """
    scenes = suite() if scenes is None else scenes
    unknown = set(only) - {name for name, _ in scenes}
    if unknown:
        raise ValueError(f"no such scene: {', '.join(sorted(unknown))}")
    spent: dict[str, float | None] = {}
    for name, config in scenes:
        if only and name not in only:
            continue
        directory, digest = Path(out_dir) / name, config_hash(config)
        hash_path = directory / HASH_FILE
        if hash_path.is_file() and hash_path.read_text().strip() == digest:
            spent[name] = None
            continue
        if directory.exists():
            shutil.rmtree(directory)
        started = time.perf_counter()
        generate(config, directory)
        hash_path.write_text(f"{digest}\n")
        spent[name] = time.perf_counter() - started
    return spent


def main(argv: list[str] | None = None) -> None:
    """Parse ``argv``, build the suite and print a line per scene."""
    parser = argparse.ArgumentParser(
        prog="python -m spoton_inference.scenes.suite", description="Generate the benchmark scene suite."
    )
    parser.add_argument("out_dir", metavar="OUT_DIR", help="directory to write the scenes into")
    parser.add_argument("--suite", choices=sorted(SUITES), default="fixed", help="which suite (default: fixed)")
    parser.add_argument("--only", nargs="+", default=[], metavar="NAME", help="generate only these scenes")
    args = parser.parse_args(argv)
    scenes = SUITES[args.suite]()
    configs = dict(scenes)
    for name, seconds in build(args.out_dir, tuple(args.only), scenes).items():
        status = "kept (config unchanged)" if seconds is None else f"generated in {seconds:.1f} s"
        print(f"{name}: {describe(configs[name])}; {status}")


if __name__ == "__main__":
    main()
