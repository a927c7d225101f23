"""``spoton eval``: score a run's MOTChallenge files against ground truth.

HOTA (with DetA, AssA), MOTA and IDF1 come from TrackEval (``trackeval_env``: its own venv);
py-motmetrics' IDF1 and MOTA are reported beside them as a cross-check, and alone with
``--no-hota``. With ground-plane truth, the map error: metres between where a matched box's
foot point lands through the camera's homography and where the person stood.

Inputs:
- ``--gt``: an environment directory with ``gt/`` (as ``../shared/real/<seq>``: its
  ``gt/<cam>.txt``, ``gt/map.csv`` and ``environment.json``'s homographies are used), a folder of
  ``<cam>.txt`` (and optionally ``map.csv``), a MOTChallenge sequence (``SEQ/gt/gt.txt``) or a file;
- ``--run``: what ``spoton track`` / ``spoton process`` wrote (``<cam>.local.txt`` and
  ``<cam>.global.txt``), or one MOT file.

One row per camera (local track ids) and one over all cameras jointly (global ids, each
camera's frames after the previous camera's), so an identity split between two cameras costs.
A single ground-truth camera and a single run camera are paired whatever their names.

Example:
    spoton eval --gt ../shared/real/tud-campus --run out/ --json scores.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import tempfile
from pathlib import Path

from spoton_client.homography_file import (
    Homography,
    HomographyFileError,
    for_camera,
    load_homographies,
    parse_homographies,
)
from spoton_client.scoring import (
    MapError,
    Projection,
    Scores,
    camera_map_errors,
    read_map_positions,
    read_mot,
    score_camera,
    score_cross_camera,
)
from spoton_client.trackeval_env import TRACKEVAL_VERSION, TrackEvalUnavailable, run_trackeval

ALL_CAMERAS = "all"
MAP_TRUTH = "map.csv"
ENVIRONMENT_FILE = "environment.json"
# MOTChallenge ground truth with a class column (8th) of these ids gets TrackEval's MOT17
# preprocessing (distractors removed); without classes (MOT15, -1) it is scored as MOT15.
PEDESTRIAN_CLASS = 1


class EvalInputError(ValueError):
    """The ground truth or the run cannot be read as documented; the message says why."""


@dataclasses.dataclass(frozen=True, slots=True)
class Pairing:
    """What is scored against what."""

    gt_files: dict[str, Path]  # camera -> ground truth
    local_files: dict[str, Path]  # camera -> run, local ids
    global_files: dict[str, Path]  # camera -> run, global ids
    map_truth: Path | None
    homographies: dict[str, Homography]


@dataclasses.dataclass(frozen=True, slots=True)
class Row:
    sequence: str  # a camera id, or ALL_CAMERAS
    ids: str  # "local" or "global"
    trackeval: dict[str, float] | None  # HOTA, DetA, AssA, MOTA, IDF1, IDSW, ...
    motmetrics: dict[str, float]  # idf1, mota, id_switches


@dataclasses.dataclass(frozen=True, slots=True)
class Report:
    gt: str
    run: str
    rows: list[Row]
    map_error_m: dict[str, MapError]  # per camera, and ALL_CAMERAS
    trackeval_version: str | None
    # "<camera> local|global" -> boxes dropped because their id was already in that frame.
    repeated_ids_dropped: dict[str, int] = dataclasses.field(default_factory=dict)

    def to_json(self) -> dict:
        return {
            "gt": self.gt,
            "run": self.run,
            "trackeval_version": self.trackeval_version,
            "rows": [dataclasses.asdict(r) for r in self.rows],
            "map_error_m": {k: dataclasses.asdict(v) for k, v in self.map_error_m.items()},
            "repeated_ids_dropped": self.repeated_ids_dropped,
        }


def pair_inputs(gt: Path, run: Path, homography_file: Path | None = None, online: bool = False) -> Pairing:
    gt_files, map_truth, gt_env = _ground_truth(gt)
    local_files, global_files, run_env = _run_files(run, online)
    run_homographies = _env_homographies(run_env)
    if len(gt_files) == 1 and len(local_files) == 1:
        (gt_cam,) = gt_files
        (run_cam,) = local_files
        local_files, global_files = {gt_cam: local_files[run_cam]}, {gt_cam: global_files[run_cam]}
        run_homographies = {gt_cam: run_homographies[run_cam]} if run_cam in run_homographies else {}
    missing = sorted(gt_files.keys() - local_files.keys())
    if missing:
        raise EvalInputError(
            f"the run {run} has no MOT file for ground-truth camera(s) {missing}; it has {sorted(local_files)}"
        )
    if homography_file is not None:
        homographies = load_homographies(homography_file)
    else:
        # The run's own environment (what `spoton track` used) before the ground truth's.
        homographies = _env_homographies(gt_env) | run_homographies
    return Pairing(gt_files, local_files, global_files, map_truth, homographies)


def evaluate(
    gt: Path, run: Path, *, homography_file: Path | None = None, hota: bool = True, online: bool = False
) -> Report:
    pairing = pair_inputs(gt, run, homography_file, online)
    cams = sorted(pairing.gt_files)
    with tempfile.TemporaryDirectory(prefix="spoton-eval-") as tmp:
        pairing, repeats = _without_repeated_ids(pairing, Path(tmp))
        trackeval = _trackeval(pairing, cams) if hota else None
        rows = [
            Row(
                cam,
                "local",
                trackeval[cam] if trackeval else None,
                _mm(score_camera(pairing.gt_files[cam], pairing.local_files[cam])),
            )
            for cam in cams
        ]
        cross = score_cross_camera([(pairing.gt_files[c], pairing.global_files[c]) for c in cams])
        rows.append(Row(ALL_CAMERAS, "global", trackeval[ALL_CAMERAS] if trackeval else None, _mm(cross)))
        map_error = _map_errors(pairing, cams)
    return Report(str(gt), str(run), rows, map_error, TRACKEVAL_VERSION if hota else None, repeats)


def format_table(report: Report) -> str:
    """The report as an aligned text table."""
    header = ["sequence", "ids", "HOTA", "DetA", "AssA", "MOTA", "IDF1", "IDSW", "mm IDF1", "mm MOTA"]
    lines = [header]
    for r in report.rows:
        te = r.trackeval or {}
        lines.append(
            [r.sequence, r.ids, *(_pct(te.get(k)) for k in ("HOTA", "DetA", "AssA", "MOTA", "IDF1")),
             _int(te.get("IDSW")), _pct(r.motmetrics["idf1"]), _pct(r.motmetrics["mota"])]
        )  # fmt: skip
    widths = [max(len(row[i]) for row in lines) for i in range(len(header))]
    text = [
        "  ".join(
            cell.rjust(w) if i > 1 else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in lines
    ]
    source = f"TrackEval {report.trackeval_version}" if report.trackeval_version else "TrackEval not run (--no-hota)"
    text.append(f"HOTA, DetA, AssA, MOTA, IDF1, IDSW: {source}; mm: py-motmetrics (IoU >= 0.5); percent")
    if report.repeated_ids_dropped:
        counts = ", ".join(f"{k}: {n}" for k, n in report.repeated_ids_dropped.items())
        text.append(
            f"the run gives one id to two boxes in a frame ({counts}): the more confident box of each was kept "
            "for both libraries (TrackEval scores no such run)"
        )
    if report.map_error_m:
        parts = [
            f"{cam} median {e.median:.3f}, p90 {e.p90:.3f} over {e.boxes} boxes"
            for cam, e in report.map_error_m.items()
        ]
        text.append("map error (m): " + "; ".join(parts))
    return "\n".join(text)


def write_json(report: Report, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report.to_json(), indent=2) + "\n")


def _without_repeated_ids(pairing: Pairing, work: Path) -> tuple[Pairing, dict[str, int]]:
    """The pairing with run files in which no id is twice in one frame (the more confident box
    stays; an interpolated box has score 0), and how many boxes each lost."""
    dropped: dict[str, int] = {}
    files: dict[str, dict[str, Path]] = {"local": dict(pairing.local_files), "global": dict(pairing.global_files)}
    for kind, by_cam in files.items():
        for cam, path in by_cam.items():
            best: dict[tuple[str, str], tuple[float, str]] = {}
            lines = [line for line in path.read_text().splitlines() if line.count(",") >= 5]
            for line in lines:
                parts = line.split(",")
                score = float(parts[6]) if len(parts) > 6 else 1.0
                key = (parts[0], parts[1])
                if key not in best or score > best[key][0]:
                    best[key] = (score, line)
            if len(best) < len(lines):
                dropped[f"{cam} {kind}"] = len(lines) - len(best)
                by_cam[cam] = work / kind / f"{cam}.txt"
                by_cam[cam].parent.mkdir(exist_ok=True)
                by_cam[cam].write_text("".join(line + "\n" for _, line in best.values()))
    return dataclasses.replace(pairing, local_files=files["local"], global_files=files["global"]), dropped


def _ground_truth(gt: Path) -> tuple[dict[str, Path], Path | None, Path | None]:
    """Camera -> ground-truth file, the map truth if any, and the environment directory if any."""
    if gt.is_file():
        return {gt.stem: gt}, None, None
    if (gt / "gt" / "gt.txt").is_file():  # a MOTChallenge sequence
        return {gt.name: gt / "gt" / "gt.txt"}, None, None
    env_dir = gt if (gt / ENVIRONMENT_FILE).is_file() else None
    folder = gt / "gt" if (gt / "gt").is_dir() else gt
    files = {p.stem: p for p in sorted(folder.glob("*.txt"))}
    if not files:
        raise EvalInputError(f"no ground truth in {gt}: expected <camera>.txt MOT files (or gt/<camera>.txt)")
    map_truth = folder / MAP_TRUTH
    return files, map_truth if map_truth.is_file() else None, env_dir


def _run_files(run: Path, online: bool) -> tuple[dict[str, Path], dict[str, Path], Path | None]:
    if run.is_file():
        return {run.stem: run}, {run.stem: run}, None
    if not run.is_dir():
        raise EvalInputError(f"run {run} does not exist")
    infix = "online." if online else ""
    local = {
        p.name.removesuffix(f".{infix}local.txt"): p
        for p in sorted(run.glob(f"*.{infix}local.txt"))
        if online or not p.name.endswith(".online.local.txt")
    }
    if not local:
        raise EvalInputError(f"no <camera>.{infix}local.txt in {run}: is it the --out of spoton track or process?")
    found = {cam: run / f"{cam}.{infix}global.txt" for cam in local}
    # Without global ids the local ones stand in: one camera's ids are then its people.
    global_files = {cam: path if path.is_file() else local[cam] for cam, path in found.items()}
    return local, global_files, run if (run / ENVIRONMENT_FILE).is_file() else None


def _env_homographies(env_dir: Path | None) -> dict[str, Homography]:
    if env_dir is None:
        return {}
    path = env_dir / ENVIRONMENT_FILE
    doc = json.loads(path.read_text())
    cams = {str(c["id"]): c["homography"] for c in doc.get("cameras", []) if c.get("homography")}
    return parse_homographies(cams, str(path)) if cams else {}


def _trackeval(pairing: Pairing, cams: list[str]) -> dict[str, dict[str, float]]:
    with tempfile.TemporaryDirectory(prefix="spoton-eval-") as tmp:
        work = Path(tmp)
        sequences = {
            cam: {"gt": str(pairing.gt_files[cam].resolve()), "hyp": str(pairing.local_files[cam].resolve()),
                  "length": _length(pairing.gt_files[cam], pairing.local_files[cam])}
            for cam in cams
        }  # fmt: skip
        # All cameras as one sequence: each camera's frames after the previous camera's.
        offset, gt_lines, hyp_lines = 0, [], []
        for cam in cams:
            gt_lines += _shifted(pairing.gt_files[cam], offset)
            hyp_lines += _shifted(pairing.global_files[cam], offset)
            offset += sequences[cam]["length"]
        joined = work / "joined"
        joined.mkdir()
        (joined / "gt.txt").write_text("".join(gt_lines))
        (joined / "hyp.txt").write_text("".join(hyp_lines))
        sequences[ALL_CAMERAS] = {"gt": str(joined / "gt.txt"), "hyp": str(joined / "hyp.txt"), "length": offset}
        benchmark = "MOT17" if all(_has_classes(pairing.gt_files[c]) for c in cams) else "MOT15"
        return run_trackeval({"work_dir": str(work / "layout"), "benchmark": benchmark, "sequences": sequences})


def _length(*files: Path) -> int:
    return max((max(read_mot(f), default=0) for f in files), default=0) or 1


def _shifted(path: Path, offset: int) -> list[str]:
    out = []
    for line in path.read_text().splitlines():
        parts = line.split(",")
        if len(parts) >= 6:
            parts[0] = str(int(float(parts[0])) + offset)
            out.append(",".join(parts) + "\n")
    return out


def _has_classes(path: Path) -> bool:
    """Whether the ground truth labels classes (MOT16/17/20: 8th column 1 for pedestrians)."""
    for line in path.read_text().splitlines():
        parts = line.split(",")
        if len(parts) >= 8:
            return int(float(parts[7])) >= PEDESTRIAN_CLASS
    return False


def _map_errors(pairing: Pairing, cams: list[str]) -> dict[str, MapError]:
    if pairing.map_truth is None:
        return {}
    positions = read_map_positions(pairing.map_truth)
    errors = {}
    for cam in cams:
        spec = for_camera(pairing.homographies, cam)
        if spec is None:
            continue
        project = _projection(spec)
        errors[cam] = camera_map_errors(
            read_mot(pairing.gt_files[cam]), read_mot(pairing.local_files[cam]), project, positions
        )
    if not errors:
        return {}
    out = {cam: MapError.of([e]) for cam, e in errors.items()}
    if len(out) > 1:
        out[ALL_CAMERAS] = MapError.of(list(errors.values()))
    return out


def _projection(spec: Homography) -> Projection:
    # The server's own fit (cv2.findHomography over all pairs), so the error is the one its map shows.
    from spoton_inference.domain.geometry import Homography as Fitted

    if "matrix" in spec:
        fitted = Fitted.from_matrix([spec["matrix"][i : i + 3] for i in range(0, 9, 3)])
    else:
        fitted = Fitted.fit(spec["image_points"], spec["map_points"])
    return fitted.project_points


def _mm(scores: Scores) -> dict[str, float]:
    return {"idf1": scores.idf1, "mota": scores.mota, "id_switches": scores.id_switches}


def _pct(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{100 * value:.1f}"


def _int(value: float | None) -> str:
    return "-" if value is None else str(int(value))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--gt", type=Path, required=True, help="ground truth: environment dir, folder, sequence or file"
    )
    parser.add_argument("--run", type=Path, required=True, help="the --out of spoton track/process, or one MOT file")
    parser.add_argument("--homography", type=Path, help="JSON homography for the map error (default: the run's)")
    parser.add_argument("--online", action="store_true", help="score the online result (<cam>.online.*.txt)")
    parser.add_argument("--no-hota", action="store_true", help="motmetrics only: no TrackEval venv needed")
    parser.add_argument("--json", type=Path, help="also write the scores here")


def run_command(args: argparse.Namespace) -> int:
    """``spoton eval``; the exit status."""
    try:
        report = evaluate(args.gt, args.run, homography_file=args.homography, hota=not args.no_hota, online=args.online)
    except (EvalInputError, HomographyFileError, TrackEvalUnavailable) as exc:
        print(f"spoton eval: {exc}", file=sys.stderr)
        return 2
    print(format_table(report))
    if args.json:
        write_json(report, args.json)
        print(f"scores written to {args.json}")
    return 0
