"""`spoton eval`: HOTA, MOTA and IDF1 from TrackEval (its own venv, made on first use),
motmetrics beside it, and map error, on the real PETS09-S2L1 ground truth and on small
hand-made runs whose right answers are known."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest

from spoton_client.cli import main
from spoton_client.evaluate import ALL_CAMERAS, EvalInputError, evaluate

REAL = Path(__file__).resolve().parents[3] / "shared" / "real"
PETS = REAL / "pets09-s2l1"
needs_pets = pytest.mark.skipif(not PETS.is_dir(), reason="the shared real footage is not beside the repository")


def _rows(report) -> dict:
    return {r.sequence: r for r in report.rows}


def _mot(path: Path, rows: list[tuple[int, int, float, float, float, float]]) -> Path:
    path.write_text("".join(f"{f},{i},{x:.2f},{y:.2f},{w:.2f},{h:.2f},1,-1,-1,-1\n" for f, i, x, y, w, h in rows))
    return path


def _walker(person: int, frames: range, x0: float) -> list[tuple[int, int, float, float, float, float]]:
    return [(f, person, x0 + 3 * f, 100.0, 40.0, 100.0) for f in frames]


def _degraded(gt: Path, out: Path, seed: int = 3) -> None:
    """The ground truth as a tracker might get it wrong: missed boxes, jitter, false boxes and
    two people whose ids are swapped half-way."""
    rng = random.Random(seed)
    lines = []
    for n, line in enumerate(gt.read_text().splitlines()):
        f, i, x, y, w, h = (float(v) for v in line.split(",")[:6])
        if n % 6 == 0:
            continue
        if f > 400 and i in (9, 15):
            i = 24 - i
        x, y = x + rng.uniform(-3, 3), y + rng.uniform(-3, 3)
        lines.append(f"{int(f)},{int(i)},{x:.2f},{y:.2f},{w:.2f},{h:.2f},1,-1,-1,-1\n")
        if n % 17 == 0:
            lines.append(f"{int(f)},999,{x + 200:.2f},{y:.2f},{w:.2f},{h:.2f},0.5,-1,-1,-1\n")
    out.write_text("".join(lines))


@needs_pets
def test_ground_truth_scored_against_itself_is_perfect_with_the_calibration_error_as_map_error(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    for kind in ("local", "global"):
        shutil.copyfile(PETS / "gt" / "c01.txt", run / f"c01.{kind}.txt")
    report = evaluate(PETS, run)
    for row in report.rows:
        assert {k: row.trackeval[k] for k in ("HOTA", "DetA", "AssA", "MOTA", "IDF1")} == dict.fromkeys(
            ("HOTA", "DetA", "AssA", "MOTA", "IDF1"), 1.0
        )
        assert row.motmetrics["idf1"] == row.motmetrics["mota"] == 1.0
    # The true boxes' foot points through the fitted homography: its fit error (README: 0.03 m).
    error = report.map_error_m["c01"]
    assert error.median < 0.05
    assert error.boxes == len((PETS / "gt" / "c01.txt").read_text().splitlines())


@needs_pets
def test_a_flawed_run_scores_alike_in_trackeval_and_motmetrics(tmp_path):
    hyp = tmp_path / "c01.txt"
    _degraded(PETS / "gt" / "c01.txt", hyp)
    row = _rows(evaluate(PETS / "gt" / "c01.txt", hyp))["c01"]
    assert row.trackeval["IDF1"] == pytest.approx(row.motmetrics["idf1"], abs=0.005)
    assert row.trackeval["MOTA"] == pytest.approx(row.motmetrics["mota"], abs=0.005)
    assert row.trackeval["IDSW"] == row.motmetrics["id_switches"] > 0
    assert 0.5 < row.trackeval["HOTA"] < 0.95
    assert row.trackeval["DetA"] < 1.0 and row.trackeval["AssA"] < 1.0  # boxes missed and moved, ids swapped


def test_one_person_with_two_global_ids_costs_only_the_cross_camera_row(tmp_path):
    gt, run = tmp_path / "gt", tmp_path / "run"
    gt.mkdir(), run.mkdir()
    _mot(gt / "c01.txt", _walker(1, range(1, 21), 10))
    _mot(gt / "c02.txt", _walker(1, range(15, 41), 50))
    _mot(run / "c01.local.txt", _walker(3, range(1, 21), 10))
    _mot(run / "c02.local.txt", _walker(4, range(15, 41), 50))
    _mot(run / "c01.global.txt", _walker(7, range(1, 21), 10))
    _mot(run / "c02.global.txt", _walker(8, range(15, 41), 50))  # the hand-over was missed
    rows = _rows(evaluate(gt, run))
    assert rows["c01"].trackeval["IDF1"] == rows["c02"].trackeval["IDF1"] == 1.0
    cross = rows[ALL_CAMERAS]
    assert cross.trackeval["IDF1"] == pytest.approx(26 / 46)  # the longer of the two halves kept
    assert cross.trackeval["IDF1"] == pytest.approx(cross.motmetrics["idf1"])
    # The missed hand-over is one identity switch for CLEAR MOTA, of 46 true boxes.
    assert cross.trackeval["IDSW"] == cross.motmetrics["id_switches"] == 1
    assert cross.trackeval["MOTA"] == pytest.approx(1 - 1 / 46)


def test_a_ground_truth_camera_without_a_run_file_is_named(tmp_path):
    gt, run = tmp_path / "gt", tmp_path / "run"
    gt.mkdir(), run.mkdir()
    _mot(gt / "c01.txt", _walker(1, range(1, 5), 10))
    _mot(gt / "c02.txt", _walker(1, range(1, 5), 10))
    _mot(run / "c01.local.txt", _walker(1, range(1, 5), 10))
    with pytest.raises(EvalInputError, match=r"no MOT file for ground-truth camera\(s\) \['c02'\]"):
        evaluate(gt, run, hota=False)


def test_the_command_prints_a_table_and_writes_json(tmp_path, capsys):
    gt = _mot(tmp_path / "gt.txt", _walker(1, range(1, 11), 10))
    hyp = _mot(tmp_path / "hyp.txt", _walker(5, range(1, 11), 10))
    with pytest.raises(SystemExit) as done:
        main(["eval", "--gt", str(gt), "--run", str(hyp), "--json", str(tmp_path / "s.json")])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == [
        "sequence",
        "ids",
        "HOTA",
        "DetA",
        "AssA",
        "MOTA",
        "IDF1",
        "IDSW",
        "mm",
        "IDF1",
        "mm",
        "MOTA",
    ]
    assert "TrackEval 1.3.0" in out
    saved = json.loads((tmp_path / "s.json").read_text())
    assert [r["trackeval"]["HOTA"] for r in saved["rows"]] == [1.0, 1.0]


def test_the_command_explains_unusable_input_with_status_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as done:
        main(["eval", "--gt", str(tmp_path), "--run", str(tmp_path / "nothing"), "--no-hota"])
    assert done.value.code == 2
    assert "no ground truth in" in capsys.readouterr().err


@needs_pets
def test_map_error_uses_the_runs_own_homography_before_the_ground_truths(tmp_path):
    """`spoton track` records the homography it ran with in the run's environment.json; a run
    whose floor plan is off by one metre must show a one-metre map error."""
    run = tmp_path / "run"
    run.mkdir()
    shutil.copyfile(PETS / "gt" / "c01.txt", run / "camera.local.txt")
    true = json.loads((PETS / "environment.json").read_text())["cameras"][0]["homography"]
    shifted = {"image_points": true["image_points"], "map_points": [[x + 1.0, y] for x, y in true["map_points"]]}
    (run / "environment.json").write_text(
        json.dumps({"id": "job-x", "cameras": [{"id": "camera", "homography": shifted}]})
    )
    assert evaluate(PETS, run, hota=False).map_error_m["c01"].median == pytest.approx(1.0, abs=0.05)
    given = tmp_path / "h.json"
    given.write_text(json.dumps(true))
    assert evaluate(PETS, run, hota=False, homography_file=given).map_error_m["c01"].median < 0.05


def test_a_run_that_repeats_an_id_in_a_frame_is_scored_with_its_more_confident_box(tmp_path):
    gt = _mot(tmp_path / "gt.txt", _walker(1, range(1, 11), 10))
    hyp = _mot(tmp_path / "hyp.txt", _walker(5, range(1, 11), 10))
    with hyp.open("a") as f:  # an interpolated (score 0) box beside the detection, as refinement once wrote
        f.write("4,5,300.00,100.00,40.00,100.00,0.0000,-1,-1,-1\n")
    report = evaluate(gt, hyp)
    assert report.repeated_ids_dropped == {"gt local": 1, "gt global": 1}
    assert [r.trackeval["HOTA"] for r in report.rows] == [1.0, 1.0]
