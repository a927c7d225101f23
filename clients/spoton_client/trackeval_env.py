"""TrackEval in an interpreter of its own, made once on first use.

HOTA comes from TrackEval (PyPI ``trackeval``, the reference implementation's package), but it
cannot live in SpotOn's environment: its releases for Python 3.11 need numpy >= 2.3, and
SpotOn is held below numpy 2 by nvidia-pytriton 0.7 (``numpy<2.0.0``) and motmetrics 1.4
(``np.asfarray``); the one release that accepts numpy 1 (1.0.0) requires ``opencv-python``,
which would install a second ``cv2`` over SpotOn's ``opencv-python-headless``. So, like the
benchmark's ``.venv-baseline``, TrackEval gets a venv beside SpotOn's: ``$SPOTON_TRACKEVAL_VENV``,
else ``trackeval/`` inside the running venv (``.venv/trackeval`` in a checkout), created with
``python -m venv`` and ``pip install trackeval==TRACKEVAL_VERSION`` the first time it is
needed (``make setup`` does it ahead), and only ever run as a subprocess.

Example:
    python = ensure_trackeval()          # the venv's interpreter, installed if missing
    results = run_trackeval(request)     # {sequence: {"HOTA": ..., "IDF1": ..., ...}}
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

TRACKEVAL_VERSION = "1.3.0"
ENV_VAR = "SPOTON_TRACKEVAL_VENV"
RUNNER = Path(__file__).with_name("trackeval_runner.py")
# Marks a venv whose install finished; a half-made one is made again.
READY_MARK = f".trackeval-{TRACKEVAL_VERSION}"
INSTALL_TIMEOUT_S = 900.0
RUN_TIMEOUT_S = 600.0


class TrackEvalUnavailable(RuntimeError):
    """TrackEval could not be installed or run; the message says why and what to do."""


def venv_dir() -> Path:
    configured = os.environ.get(ENV_VAR)
    return Path(configured) if configured else Path(sys.prefix) / "trackeval"


def venv_python(root: Path) -> Path:
    return root / "bin" / "python"


def ensure_trackeval(root: Path | None = None) -> Path:
    """The interpreter of a venv with TrackEval, making it first when it is not there yet.

    It is built in a temporary folder beside ``root`` and renamed into place, so two callers at
    once, or one interrupted, never leave a broken venv where the next one looks."""
    root = root or venv_dir()
    if (root / READY_MARK).is_file():
        return venv_python(root)
    root.parent.mkdir(parents=True, exist_ok=True)
    print(
        f"setting up TrackEval {TRACKEVAL_VERSION} in {root} (once; set {ENV_VAR} to put it elsewhere)", file=sys.stderr
    )
    staging = Path(tempfile.mkdtemp(prefix=f".{root.name}-", dir=root.parent))
    try:
        _run([sys.executable, "-m", "venv", str(staging)], "python -m venv")
        _run(
            [str(venv_python(staging)), "-m", "pip", "install", "-q", "--disable-pip-version-check",
             f"trackeval=={TRACKEVAL_VERSION}"],
            f"pip install trackeval=={TRACKEVAL_VERSION}",
        )  # fmt: skip
        (staging / READY_MARK).touch()
        if (root / READY_MARK).is_file():  # another caller finished first
            return venv_python(root)
        shutil.rmtree(root, ignore_errors=True)
        staging.rename(root)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return venv_python(root)


def run_trackeval(request: dict, python: Path | None = None) -> dict[str, dict[str, float]]:
    """Run ``trackeval_runner.py`` on ``request`` (its docstring says the format)."""
    python = python or ensure_trackeval()
    with tempfile.TemporaryDirectory(prefix="spoton-trackeval-") as tmp:
        request_file, result_file = Path(tmp) / "request.json", Path(tmp) / "result.json"
        request_file.write_text(json.dumps(request))
        _run([str(python), str(RUNNER), str(request_file), str(result_file)], "TrackEval", RUN_TIMEOUT_S)
        return json.loads(result_file.read_text())


def _run(command: list[str], what: str, timeout_s: float = INSTALL_TIMEOUT_S) -> None:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise TrackEvalUnavailable(f"{what} failed: {exc}") from exc
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
        raise TrackEvalUnavailable(f"{what} failed (exit {done.returncode}):\n{tail}")


if __name__ == "__main__":  # `python -m spoton_client.trackeval_env`: make the venv ahead (make setup)
    print(ensure_trackeval())
