"""The ``--homography FILE`` of ``spoton track`` and ``spoton eval``: a camera's image-to-map
homography as JSON, in the form ``environment.json`` gives each camera's ``homography``:

    {"image_points": [[u, v], ...], "map_points": [[x, y], ...]}   # 4+ pairs, pixels -> metres
    {"matrix": [[h11, h12, h13], [h21, h22, h23], [h31, h32, h33]]} # or 9 numbers, row-major

For several cameras (``spoton track`` on a folder), an object of such objects by camera id
(the video's file name without its extension): ``{"c01": {...}, "c02": {...}}``.

Only the shape is checked here, with messages naming the file; whether the points make a
homography (not collinear, not across the horizon) is the server's check, as for every
environment.

Example:
    >>> parse_homographies({"image_points": [[0, 0], [1, 0], [1, 1], [0, 1]],
    ...                     "map_points": [[0, 0], [2, 0], [2, 2], [0, 2]]}, "h.json")["*"]["map_points"][1]
    [2.0, 0.0]
"""

from __future__ import annotations

import json
import math
from pathlib import Path

# The key of a homography that applies to whichever camera there is (a single-video source).
ANY_CAMERA = "*"
MIN_PAIRS = 4
_KEYS = {"image_points", "map_points", "matrix"}

Homography = dict[str, list]


class HomographyFileError(ValueError):
    """The file is not a homography in the documented format; the message says what is wrong."""


def load_homographies(path: Path) -> dict[str, Homography]:
    """Camera id (or :data:`ANY_CAMERA`) -> homography object, from ``path``."""
    try:
        doc = json.loads(path.read_text())
    except OSError as exc:
        raise HomographyFileError(f"cannot read homography file {path}: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise HomographyFileError(f"homography file {path} is not JSON: {exc}") from exc
    return parse_homographies(doc, str(path))


def parse_homographies(doc: object, where: str) -> dict[str, Homography]:
    if not isinstance(doc, dict) or not doc:
        raise HomographyFileError(f"{where}: expected a JSON object with image_points and map_points (or matrix)")
    if _KEYS & doc.keys():
        return {ANY_CAMERA: _homography(doc, where)}
    return {str(cam): _homography(h, f"{where}, camera {cam!r}") for cam, h in doc.items()}


def for_camera(homographies: dict[str, Homography], camera_id: str) -> Homography | None:
    return homographies.get(camera_id, homographies.get(ANY_CAMERA))


def _homography(doc: object, where: str) -> Homography:
    if not isinstance(doc, dict) or not (_KEYS & doc.keys()):
        raise HomographyFileError(f"{where}: expected an object with image_points and map_points, or matrix")
    unknown = sorted(doc.keys() - _KEYS - {"reprojection_error_m"})
    if unknown:
        raise HomographyFileError(f"{where}: unknown keys {unknown}; allowed: {sorted(_KEYS)}")
    out: Homography = {}
    if "matrix" in doc:
        values = _numbers(_flatten(doc["matrix"]), f"{where}: matrix")
        if len(values) != 9:
            raise HomographyFileError(f"{where}: matrix must be 3x3 (9 numbers), got {len(values)}")
        out["matrix"] = values
    if "image_points" in doc or "map_points" in doc:
        image = _points(doc.get("image_points"), f"{where}: image_points")
        world = _points(doc.get("map_points"), f"{where}: map_points")
        if len(image) != len(world):
            raise HomographyFileError(
                f"{where}: {len(image)} image_points but {len(world)} map_points; they are pairs, in the same order"
            )
        if "matrix" not in out and len(image) < MIN_PAIRS:
            raise HomographyFileError(f"{where}: a homography needs at least {MIN_PAIRS} point pairs, got {len(image)}")
        out["image_points"], out["map_points"] = image, world
    return out


def _flatten(value: object) -> list[object]:
    if isinstance(value, list) and value and all(isinstance(row, list) for row in value):
        return [v for row in value for v in row]
    return value if isinstance(value, list) else [value]


def _points(value: object, where: str) -> list[list[float]]:
    if not isinstance(value, list):
        raise HomographyFileError(f"{where}: expected a list of [x, y] pairs")
    points = []
    for i, point in enumerate(value):
        if not isinstance(point, list) or len(point) != 2:
            raise HomographyFileError(f"{where}[{i}]: expected [x, y], got {json.dumps(point)}")
        points.append(_numbers(point, f"{where}[{i}]"))
    return points


def _numbers(values: list[object], where: str) -> list[float]:
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise HomographyFileError(f"{where}: {json.dumps(v)} is not a finite number")
        out.append(float(v))
    return out
