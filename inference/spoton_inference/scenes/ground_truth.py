"""Ground-truth files: per-camera MOTChallenge boxes, map positions, visibility.

Annotation rule (the one scoring relies on): a person is in camera ``c``'s ground
truth at frame ``f`` when

* at least ``min_visible_fraction`` of the drawn figure's pixels are inside the
  image *and* hidden neither behind nearer people nor behind occluders, and
* the box, clipped to the image, is at least ``min_box_height_px`` tall.

The box is the drawn figure's extent clipped to the image (occluded parts
included, as in MOTChallenge), in whole pixels with pixel ``i`` spanning
``[i, i+1)``. Frames are global 1-based indices; ids are global person ids.

Dropped frames (``frame_drop_probability``): a camera that drops frame ``f``
shows frame ``f - 1`` again (it froze; its video keeps one image per global
frame, so batches stay aligned across cameras). Its ground truth is what the
image shows: frame ``f`` repeats the rows of the last frame actually taken.
``map_positions.csv`` stays the true position at every frame.

Files under ``ground_truth/``:

* ``<camera_id>.txt``: ``frame,id,x,y,w,h,1,-1,-1,-1`` (MOTChallenge, no header).
* ``map_positions.csv``: ``frame,person_id,map_x,map_y`` in metres, every person
  every frame.
* ``visibility.csv``: every person with at least one pixel in a camera frame:
  ``frame,camera_id,person_id,x,y,w,h,foot_u,foot_v,in_frame,visible,annotated``;
  ``foot_u, foot_v`` is the exact image of the floor position (between the feet).
* ``dropped_frames.csv`` (only when frames may drop): ``frame,camera_id`` of
  every frame a camera froze on.

Example:
    >>> from spoton_inference.scenes.config import SceneConfig
    >>> from spoton_inference.scenes.render import Sighting
    >>> sighting = Sighting(3, (10, 20, 40, 100), (25.0, 99.0), 1.0, 0.9)
    >>> is_annotated(sighting, SceneConfig())
    True
    >>> mot_line(7, sighting)
    '7,3,10,20,30,80,1,-1,-1,-1'
"""

from __future__ import annotations

from pathlib import Path

from spoton_inference.scenes.config import SceneConfig
from spoton_inference.scenes.people import Person
from spoton_inference.scenes.render import Sighting

#: One camera's sightings: (global frame, sighting) in frame order.
CameraSightings = list[tuple[int, Sighting]]


def is_annotated(sighting: Sighting, config: SceneConfig) -> bool:
    """Whether ``sighting`` belongs in the camera's ground truth (see module docs)."""
    box_height = sighting.box[3] - sighting.box[1]
    return sighting.visible >= config.min_visible_fraction and box_height >= config.min_box_height_px


def mot_line(frame: int, sighting: Sighting) -> str:
    """One MOTChallenge ground-truth line."""
    x0, y0, x1, y1 = sighting.box
    return f"{frame},{sighting.person_id},{x0},{y0},{x1 - x0},{y1 - y0},1,-1,-1,-1"


def write_ground_truth(
    directory: Path,
    config: SceneConfig,
    people: list[Person],
    sightings: dict[str, CameraSightings],
    dropped: dict[str, list[int]],
) -> None:
    """Write every ground-truth file of the scene into ``directory``.

    ``dropped`` holds each camera's dropped (frozen) frames.
    """
    directory.mkdir(parents=True, exist_ok=True)
    visibility = ["frame,camera_id,person_id,x,y,w,h,foot_u,foot_v,in_frame,visible,annotated"]
    for camera_id, camera_sightings in sightings.items():
        lines = []
        for frame, sighting in camera_sightings:
            annotated = is_annotated(sighting, config)
            if annotated:
                lines.append(mot_line(frame, sighting))
            x0, y0, x1, y1 = sighting.box
            visibility.append(
                f"{frame},{camera_id},{sighting.person_id},{x0},{y0},{x1 - x0},{y1 - y0},"
                f"{sighting.foot[0]:.3f},{sighting.foot[1]:.3f},{sighting.in_frame:.4f},{sighting.visible:.4f},"
                f"{int(annotated)}"
            )
        (directory / f"{camera_id}.txt").write_text("".join(f"{line}\n" for line in lines))
    (directory / "visibility.csv").write_text("".join(f"{line}\n" for line in visibility))

    positions = ["frame,person_id,map_x,map_y"]
    for index in range(config.total_frames):
        for person in people:
            x, y = person.track.positions[index]
            positions.append(f"{index + 1},{person.id},{x:.4f},{y:.4f}")
    (directory / "map_positions.csv").write_text("".join(f"{line}\n" for line in positions))

    if config.frame_drop_probability > 0:
        rows = sorted((frame, camera_id) for camera_id, frames in dropped.items() for frame in frames)
        lines = ["frame,camera_id", *(f"{frame},{camera_id}" for frame, camera_id in rows)]
        (directory / "dropped_frames.csv").write_text("".join(f"{line}\n" for line in lines))
