"""The --homography FILE format of `spoton track` and `spoton eval`: what it accepts, and what
it tells a user whose file is wrong."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from spoton_client.homography_file import ANY_CAMERA, HomographyFileError, for_camera, load_homographies

SQUARE = [[0, 0], [100, 0], [100, 100], [0, 100]]
METRES = [[0, 0], [2, 0], [2, 2], [0, 2]]


def _write(tmp_path: Path, doc: object) -> Path:
    path = tmp_path / "h.json"
    path.write_text(json.dumps(doc))
    return path


def test_point_pairs_apply_to_any_camera(tmp_path):
    loaded = load_homographies(_write(tmp_path, {"image_points": SQUARE, "map_points": METRES}))
    assert list(loaded) == [ANY_CAMERA]
    assert for_camera(loaded, "c07") == {"image_points": SQUARE, "map_points": METRES}


def test_a_matrix_may_be_nested_or_flat(tmp_path):
    nested = load_homographies(_write(tmp_path, {"matrix": [[1, 0, 0], [0, 1, 0], [0, 0, 1]]}))
    flat = load_homographies(_write(tmp_path, {"matrix": [1, 0, 0, 0, 1, 0, 0, 0, 1]}))
    assert nested == flat == {ANY_CAMERA: {"matrix": [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]}}


def test_several_cameras_by_id(tmp_path):
    doc = {"c01": {"image_points": SQUARE, "map_points": METRES}, "c02": {"matrix": [1, 0, 0, 0, 1, 0, 0, 0, 1]}}
    loaded = load_homographies(_write(tmp_path, doc))
    assert for_camera(loaded, "c02") == {"matrix": [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]}
    assert for_camera(loaded, "c03") is None


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"image_points": SQUARE, "map_points": METRES[:3]}, "4 image_points but 3 map_points"),
        ({"image_points": SQUARE[:3], "map_points": METRES[:3]}, "at least 4 point pairs, got 3"),
        ({"image_points": [[0, 0, 1], *SQUARE[1:]], "map_points": METRES}, "image_points[0]: expected [x, y]"),
        ({"image_points": SQUARE, "map_points": [[0, "a"], *METRES[1:]]}, '"a" is not a finite number'),
        ({"matrix": [1, 0, 0, 0, 1, 0]}, "matrix must be 3x3 (9 numbers), got 6"),
        ({"image_points": SQUARE, "map_points": METRES, "points": []}, "unknown keys ['points']"),
        ({"c01": {"image_points": SQUARE}}, "camera 'c01'"),
        ([SQUARE, METRES], "expected a JSON object"),
    ],
)
def test_a_malformed_file_is_refused_naming_the_file_and_the_fault(tmp_path, doc, message):
    with pytest.raises(HomographyFileError) as err:
        load_homographies(_write(tmp_path, doc))
    assert message in str(err.value)
    assert str(tmp_path / "h.json") in str(err.value)


def test_not_json_and_missing_files_say_so(tmp_path):
    (tmp_path / "bad.json").write_text("{image_points: [")
    with pytest.raises(HomographyFileError, match="is not JSON"):
        load_homographies(tmp_path / "bad.json")
    with pytest.raises(HomographyFileError, match="cannot read homography file"):
        load_homographies(tmp_path / "missing.json")
