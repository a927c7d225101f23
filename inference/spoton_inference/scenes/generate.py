"""Generate a complete scene directory: videos, calibration, floor plan, ground truth.

Layout of ``out_dir``::

    environment.json
    map.png
    cameras/<camera_id>/sub_video_01.mp4, sub_video_02.mp4, ...
    ground_truth/<camera_id>.txt, map_positions.csv, visibility.csv

Random streams are split per purpose (people, textures, each camera's sensor
noise, each camera's frame drops) from the one seed, so e.g. adding a camera does
not change anyone's path.

Example:
    >>> import tempfile
    >>> from dataclasses import replace
    >>> from spoton_inference.scenes.config import demo_config
    >>> config = replace(demo_config(), n_people=2, frames_per_batch=3)
    >>> out = generate(config, tempfile.mkdtemp())
    >>> sorted(path.name for path in (out / "cameras" / "c01").iterdir())
    ['sub_video_01.mp4', 'sub_video_02.mp4']
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from spoton_inference.scenes.backdrop import Hall, render_backdrop
from spoton_inference.scenes.camera import PinholeCamera
from spoton_inference.scenes.config import SceneConfig
from spoton_inference.scenes.environment import MAP_IMAGE, render_map, write_environment
from spoton_inference.scenes.ground_truth import CameraSightings, write_ground_truth
from spoton_inference.scenes.occluders import OccluderLayer, render_occluders
from spoton_inference.scenes.people import Person, sample_people
from spoton_inference.scenes.render import Sighting, add_sensor_noise, dim, render_frame
from spoton_inference.scenes.video import VideoSink


def sub_video_name(batch: int) -> str:
    """File name of 1-based ``batch``: ``sub_video_01.mp4``, ..."""
    return f"sub_video_{batch:02d}.mp4"


def build_cameras(config: SceneConfig) -> dict[str, PinholeCamera]:
    """The configured cameras by id."""
    return {
        spec.id: PinholeCamera.look_at(spec.position, spec.look_at, spec.hfov_deg, spec.width, spec.height)
        for spec in config.cameras
    }


def _film_camera(
    config: SceneConfig,
    camera: PinholeCamera,
    backdrop: np.ndarray,
    occluders: OccluderLayer | None,
    people: list[Person],
    noise_rng: np.random.Generator,
    drop_rng: np.random.Generator,
    directory: Path,
) -> tuple[CameraSightings, list[int]]:
    """Write one camera's sub-videos; return its sightings in frame order and its dropped frames."""
    directory.mkdir(parents=True, exist_ok=True)
    sightings: CameraSightings = []
    dropped: list[int] = []
    image: np.ndarray | None = None
    frame_sightings: list[Sighting] = []
    for batch in range(1, config.n_batches + 1):
        with VideoSink(
            directory / sub_video_name(batch), config.fps, camera.width, camera.height, config.video_crf
        ) as sink:
            for frame in config.frame_range(batch):
                if image is not None and drop_rng.random() < config.frame_drop_probability:
                    # Frozen: the previous image and what it shows, again.
                    dropped.append(frame)
                else:
                    image, frame_sightings = render_frame(camera, backdrop, people, frame - 1, noise_rng, occluders)
                    image = add_sensor_noise(dim(image, config.light_level), noise_rng, config.sensor_noise)
                sink.write(image)
                sightings += [(frame, sighting) for sighting in frame_sightings]
    return sightings, dropped


def generate(config: SceneConfig, out_dir: str | Path) -> Path:
    """Render the scene described by ``config`` into ``out_dir`` and return its path.

    Files of the layout above are overwritten; anything else in ``out_dir`` is left
    alone (so remove a previous scene with more batches or cameras first).
    """
    if not config.cameras:
        raise ValueError("the scene needs at least one camera")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    n_cameras = len(config.cameras)
    # Children of a seed sequence depend only on their index: streams added at the
    # end (the drop streams) leave the earlier ones, and older scenes, unchanged.
    people_seed, hall_seed, *camera_seeds = np.random.SeedSequence(config.seed).spawn(2 + 2 * n_cameras)
    people = sample_people(np.random.default_rng(people_seed), config)
    hall = Hall.build(np.random.default_rng(hall_seed), config.world_size, config.room_height_m)
    cameras = build_cameras(config)

    write_environment(out / "environment.json", config, cameras)
    cv2.imwrite(str(out / MAP_IMAGE), render_map(config, hall, cameras))
    sightings, dropped = {}, {}
    for spec, noise_seed, drop_seed in zip(
        config.cameras, camera_seeds[:n_cameras], camera_seeds[n_cameras:], strict=True
    ):
        camera = cameras[spec.id]
        sightings[spec.id], dropped[spec.id] = _film_camera(
            config,
            camera,
            render_backdrop(camera, hall),
            render_occluders(camera, config.occluders),
            people,
            np.random.default_rng(noise_seed),
            np.random.default_rng(drop_seed),
            out / "cameras" / spec.id,
        )
    write_ground_truth(out / "ground_truth", config, people, sightings, dropped)
    return out
