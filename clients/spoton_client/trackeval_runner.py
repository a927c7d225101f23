"""Run TrackEval (HOTA, CLEAR, Identity) over MOTChallenge files; executed inside the TrackEval venv.

This file is a script for the separate interpreter that ``spoton_client.trackeval_env`` makes:
it imports only the standard library and TrackEval (which brings numpy 2), never SpotOn.

    python trackeval_runner.py REQUEST.json RESULT.json

REQUEST: ``{"work_dir": str, "benchmark": "MOT15" | "MOT17", "sequences": {name: {"gt": path,
"hyp": path, "length": frames}}}``. RESULT: ``{name: {metric: value}}`` with the metrics of
:data:`REPORTED`, from TrackEval's own MOTChallenge reader and evaluator: the sequences are
laid out the way its ``MotChallenge2DBox`` dataset reads them (``GT/<seq>/gt/gt.txt``,
``TRACKERS/<tracker>/data/<seq>.txt``, lengths given directly instead of ``seqinfo.ini``).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
from pathlib import Path

TRACKER = "run"
# TrackEval's result keys: HOTA/DetA/AssA/LocA are arrays over the 19 IoU thresholds (their
# mean is the published number); the others are scalars.
HOTA_ARRAYS = ("HOTA", "DetA", "AssA", "LocA")
REPORTED = {
    "HOTA": HOTA_ARRAYS,
    "CLEAR": ("MOTA", "MOTP", "IDSW", "CLR_TP", "CLR_FN", "CLR_FP", "Frag"),
    "Identity": ("IDF1", "IDP", "IDR"),
}


def main(request_path: str, result_path: str) -> None:
    request = json.loads(Path(request_path).read_text())
    work = Path(request["work_dir"])
    sequences: dict[str, dict] = request["sequences"]
    for name, seq in sequences.items():
        gt_dir = work / "gt" / name / "gt"
        data_dir = work / "trackers" / TRACKER / "data"
        gt_dir.mkdir(parents=True, exist_ok=True)
        data_dir.mkdir(parents=True, exist_ok=True)
        os.symlink(seq["gt"], gt_dir / "gt.txt")
        os.symlink(seq["hyp"], data_dir / f"{name}.txt")
    # TrackEval reports progress and, for optional datasets it cannot import, errors on
    # stdout; the caller reads only RESULT.json.
    with contextlib.redirect_stdout(io.StringIO()):
        import trackeval

        dataset = trackeval.datasets.MotChallenge2DBox(
            {
                "GT_FOLDER": str(work / "gt"),
                "TRACKERS_FOLDER": str(work / "trackers"),
                "TRACKERS_TO_EVAL": [TRACKER],
                "BENCHMARK": request["benchmark"],
                "SKIP_SPLIT_FOL": True,
                "SEQ_INFO": {name: seq["length"] for name, seq in sequences.items()},
                "PRINT_CONFIG": False,
            }
        )
        evaluator = trackeval.Evaluator(
            {
                "USE_PARALLEL": False,
                "PRINT_RESULTS": False,
                "PRINT_CONFIG": False,
                "TIME_PROGRESS": False,
                "OUTPUT_SUMMARY": False,
                "OUTPUT_DETAILED": False,
                "PLOT_CURVES": False,
                "LOG_ON_ERROR": None,
            }
        )
        metrics = [trackeval.metrics.HOTA(), trackeval.metrics.CLEAR(), trackeval.metrics.Identity()]
        results, messages = evaluator.evaluate([dataset], metrics)
    if messages["MotChallenge2DBox"][TRACKER] != "Success":
        raise SystemExit(f"TrackEval: {messages['MotChallenge2DBox'][TRACKER]}")
    by_seq = results["MotChallenge2DBox"][TRACKER]
    out = {}
    for name in sequences:
        values = by_seq[name]["pedestrian"]
        row = {}
        for family, keys in REPORTED.items():
            for key in keys:
                value = values[family][key]
                row[key] = float(value.mean()) if key in HOTA_ARRAYS else float(value)
        out[name] = row
    Path(result_path).write_text(json.dumps(out))


if __name__ == "__main__":
    main(*sys.argv[1:3])
