"""Calling ``bench/baseline_bytetrack.py`` in its own venv (``trackers`` needs numpy >= 2)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from spoton_inference.settings import REPO_ROOT

BASELINE_PYTHON = REPO_ROOT / ".venv-baseline" / "bin" / "python"
BASELINE_SCRIPT = Path(__file__).resolve().parents[1] / "baseline_bytetrack.py"


def require_baseline_venv() -> None:
    """Fail before any work is done, not after the service has run every scene."""
    if not BASELINE_PYTHON.exists():
        raise SystemExit(f"{BASELINE_PYTHON} is missing: run `make bench-accuracy`, which creates .venv-baseline")


def run_baseline(det_dir: Path, out_dir: Path, fps: float) -> None:
    """ByteTrack over ``det_dir``'s detections into ``out_dir`` (with ``baseline.json``)."""
    subprocess.run(
        [str(BASELINE_PYTHON), str(BASELINE_SCRIPT), str(det_dir), str(out_dir), "--fps", f"{fps:g}"], check=True
    )
