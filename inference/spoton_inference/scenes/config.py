"""Parameters of a synthetic multi-camera scene.

Every knob that changes what the generator draws lives here, so that a scene is
fully described by one :class:`SceneConfig` (and reproduced from it: the same
config, seed included, gives the same ground truth byte for byte).

Example:
    >>> from spoton_inference.scenes.config import demo_config
    >>> config = demo_config(seed=7)
    >>> (config.seed, len(config.cameras), config.total_frames)
    (7, 3, 160)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

OCCLUDER_SHAPES = ("box", "pillar")


@dataclass(frozen=True)
class Occluder:
    """A static obstacle standing on the floor, which people walk around and behind.

    Attributes:
        shape: ``"box"`` (an axis-aligned cuboid: crates, a counter) or
            ``"pillar"`` (an upright cylinder of diameter ``size[0]``).
        centre: ``(x, y)`` floor position of its centre in metres.
        size: ``(width, depth)`` along map ``x`` and ``y`` in metres.
        height_m: Height above the floor; a pillar as tall as the room reaches the ceiling.
        colour: Surface colour (BGR).

    Example:
        >>> round(Occluder("box", (3.0, 4.0), (1.2, 0.5)).radius_m, 2)
        0.65
    """

    shape: str
    centre: tuple[float, float]
    size: tuple[float, float]
    height_m: float = 1.1
    colour: tuple[int, int, int] = (105, 125, 150)

    def __post_init__(self) -> None:
        if self.shape not in OCCLUDER_SHAPES:
            raise ValueError(f"occluder shape must be one of {OCCLUDER_SHAPES}, got {self.shape!r}")

    @property
    def radius_m(self) -> float:
        """Radius of the circle around its footprint, which walkers keep out of."""
        return self.size[0] / 2 if self.shape == "pillar" else math.hypot(*self.size) / 2


@dataclass(frozen=True)
class CameraSpec:
    """Where one camera hangs and what it sees.

    Positions are in the world/map frame in metres: ``x`` grows to the right of the
    floor plan, ``y`` grows downwards on it, heights are above the floor.

    Attributes:
        id: Stable camera id, used as a folder and file name.
        name: Human-readable name.
        position: ``(x, y, height)`` of the optical centre.
        look_at: ``(x, y)`` floor point that appears at the image centre.
        hfov_deg: Horizontal field of view in degrees (square pixels, no distortion).
        width: Image width in pixels (even, for 4:2:0 video).
        height: Image height in pixels (even).

    Example:
        >>> CameraSpec("c01", "Entrance", (0.5, 6.0, 3.0), (6.0, 6.0)).width
        640
    """

    id: str
    name: str
    position: tuple[float, float, float]
    look_at: tuple[float, float]
    hfov_deg: float = 55.0
    width: int = 640
    height: int = 480


@dataclass(frozen=True)
class SceneConfig:
    """Everything the generator needs, seed included.

    The scene is a closed hall (``world_size`` floor, ``room_height_m`` high) seen
    by ``cameras``; ``n_people`` walk between random waypoints for
    ``n_batches * frames_per_batch`` frames at ``fps``.

    The difficulty knobs default to the plain demo: crowd density is ``n_people``
    on ``world_size``; ``crossing_fraction`` makes paths cross, ``similar_clothes``
    dresses people alike, ``occluders`` and ``light_level`` make the detector miss
    people who are in the ground truth, ``frame_drop_probability`` freezes cameras.
    Cameras without overlap are a matter of ``cameras`` (see
    :func:`~spoton_inference.scenes.layouts.corridor_cameras`).

    Attributes:
        seed: Seed of every random choice (paths, looks, textures, sensor noise).
        env_id: Environment id written to ``environment.json``.
        name: Environment name written to ``environment.json``.
        world_size: ``(width, depth)`` of the floor in metres (map x and y extent).
        room_height_m: Height of the walls/ceiling; above every camera.
        cameras: The cameras; they share ``fps`` so batches align in time.
        fps: Frames per second of every camera.
        frames_per_batch: Frames in each sub-video.
        n_batches: Sub-videos per camera.
        n_people: People walking in the hall.
        person_height_m: Range of body heights.
        walking_speed_mps: Range of walking speeds.
        pause_probability: Chance that a person stands still on reaching a waypoint.
        pause_s: Range of such pauses in seconds.
        min_leg_m: Shortest distance between consecutive waypoints.
        waypoint_margin_m: Waypoints keep this far from the walls.
        crossing_fraction: Chance that a new waypoint takes the walker across
            another person's path, timed to pass them (see
            :mod:`~spoton_inference.scenes.crossing`).
        similar_clothes: 0 gives everyone distinct shirt colours; towards 1 shirts
            and trousers converge on one shared outfit (1: identical colours).
        occluders: Static boxes and pillars on the floor; people walk around them
            and are hidden behind them.
        light_level: Brightness gain of the whole image (1 = normal); below 1 the
            scene is dim and the sensor noise relatively stronger.
        frame_drop_probability: Chance that a camera freezes on a frame (frame 1
            never): the image and that camera's ground truth repeat the previous
            frame (see :mod:`~spoton_inference.scenes.ground_truth`).
        min_visible_fraction: A person is in a camera's ground truth only when at
            least this fraction of the drawn figure is in the image and not hidden
            behind nearer people or occluders.
        min_box_height_px: ... and only when the clipped box is at least this tall.
        metres_per_pixel: Scale of the rendered ``map.png``.
        sensor_noise: Standard deviation (grey levels) of per-frame pixel noise.
        video_crf: H.264 constant-rate factor (lower is better quality, bigger files).

    Example:
        >>> config = SceneConfig(cameras=demo_config().cameras, n_people=2)
        >>> config.frame_range(batch=2)
        range(81, 161)
    """

    seed: int = 0
    env_id: str = "synthetic-hall"
    name: str = "Synthetic hall"
    world_size: tuple[float, float] = (14.0, 9.0)
    room_height_m: float = 4.0
    cameras: tuple[CameraSpec, ...] = field(default_factory=tuple)
    fps: int = 10
    frames_per_batch: int = 80
    n_batches: int = 2
    n_people: int = 8
    person_height_m: tuple[float, float] = (1.65, 1.92)
    walking_speed_mps: tuple[float, float] = (1.0, 1.5)
    pause_probability: float = 0.2
    pause_s: tuple[float, float] = (0.5, 2.0)
    min_leg_m: float = 4.0
    waypoint_margin_m: float = 1.0
    crossing_fraction: float = 0.0
    similar_clothes: float = 0.0
    occluders: tuple[Occluder, ...] = ()
    light_level: float = 1.0
    frame_drop_probability: float = 0.0
    min_visible_fraction: float = 0.5
    min_box_height_px: int = 40
    metres_per_pixel: float = 0.02
    sensor_noise: float = 2.0
    video_crf: int = 23

    def __post_init__(self) -> None:
        for name in ("crossing_fraction", "similar_clothes", "frame_drop_probability"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if self.light_level <= 0.0:
            raise ValueError(f"light_level must be positive, got {self.light_level}")

    @property
    def people_per_100m2(self) -> float:
        """Crowd density: people per 100 square metres of floor.

        Example:
            >>> round(demo_config().people_per_100m2, 1)
            6.3
        """
        return 100.0 * self.n_people / (self.world_size[0] * self.world_size[1])

    @property
    def total_frames(self) -> int:
        """Number of global frames, all batches together."""
        return self.n_batches * self.frames_per_batch

    def frame_range(self, batch: int) -> range:
        """1-based global frame indices covered by 1-based ``batch`` (every camera)."""
        first = (batch - 1) * self.frames_per_batch + 1
        return range(first, first + self.frames_per_batch)


def demo_config(seed: int = 0) -> SceneConfig:
    """The demo scene: a 14 m x 9 m hall, 3 cameras, 8 people, 2 x 80 frames at 10 fps.

    Cameras hang 3 m high: ``c01`` and ``c03`` on the north wall look into the west
    and east ends of the hall and do not overlap; ``c02``, mid south wall, looks
    north and overlaps both, so people are handed over with and without a shared
    view. The hall is small and the lenses narrow enough that people stay large in
    the image: the detector squashes frames to 300 x 300, and people under about
    80 px tall there are often missed.

    Example:
        >>> [camera.id for camera in demo_config().cameras]
        ['c01', 'c02', 'c03']
    """
    cameras = (
        CameraSpec("c01", "West end", position=(4.5, 0.3, 3.0), look_at=(2.0, 5.8)),
        CameraSpec("c02", "South wall", position=(7.0, 8.7, 3.0), look_at=(7.0, 3.4)),
        CameraSpec("c03", "East end", position=(9.5, 0.3, 3.0), look_at=(12.0, 5.8)),
    )
    return SceneConfig(seed=seed, cameras=cameras)
