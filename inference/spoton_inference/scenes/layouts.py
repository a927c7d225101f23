"""Camera layouts beyond the demo's: views that do not overlap.

:func:`corridor_cameras` hangs cameras at even spacing along one long wall of a
corridor-like hall, each looking straight across it. In a 32 m x 7 m hall with
four such cameras (the defaults) no floor point is in two views; with walkers
kept 2 m off the walls (``waypoint_margin_m``) each view shows them whole along
3 to 4 m of the walkway, nobody is ever seen (even in part) by two cameras at
once, and walkers cross an unseen gap of 4 to 5 m (three to four seconds)
between neighbouring views: hand-overs without a shared view.

Example:
    >>> cameras = corridor_cameras(32.0, 7.0, 4)
    >>> [camera.id for camera in cameras], [camera.position[0] for camera in cameras]
    (['c01', 'c02', 'c03', 'c04'], [4.0, 12.0, 20.0, 28.0])
"""

from __future__ import annotations

from spoton_inference.scenes.config import CameraSpec


def corridor_cameras(
    length_m: float,
    width_m: float,
    n_cameras: int,
    height_m: float = 3.0,
    aim: float = 0.7,
    hfov_deg: float = 55.0,
    image_size: tuple[int, int] = (640, 480),
) -> tuple[CameraSpec, ...]:
    """``n_cameras`` on the north wall (``y = 0``) of a ``length_m`` x ``width_m`` hall.

    Camera ``k`` (1-based) hangs ``height_m`` high at ``x = (k - 0.5) * length_m /
    n_cameras``, 0.15 m off the wall, and looks straight across at the floor point
    ``aim * width_m`` away (a fraction of the width, so the view's lower edge
    clears the near half of the corridor).

    Returns:
        Camera specs ``c01``, ``c02``... from west to east.
    """
    spacing = length_m / n_cameras
    return tuple(
        CameraSpec(
            f"c{index:02d}",
            f"Corridor {index}",
            position=((index - 0.5) * spacing, 0.15, height_m),
            look_at=((index - 0.5) * spacing, aim * width_m),
            hfov_deg=hfov_deg,
            width=image_size[0],
            height=image_size[1],
        )
        for index in range(1, n_cameras + 1)
    )
