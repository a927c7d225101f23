"""The demo: a generated environment with ground truth, processed and scored."""

from __future__ import annotations

import dataclasses
import textwrap
from pathlib import Path

from spoton_client.process import ProcessResult
from spoton_client.scoring import Scores, score_environment
from spoton_inference.scenes.config import demo_config
from spoton_inference.scenes.generate import generate
from spoton_inference.settings import REPO_ROOT

DEFAULT_DEMO_DIR = REPO_ROOT / "var" / "demo"


def ensure_demo_environment(env_dir: Path) -> Path:
    """Generate the seeded demo environment unless it is already there."""
    if not (env_dir / "environment.json").is_file():
        print(f"generating the demo environment in {env_dir} ...")
        generate(demo_config(), env_dir)
    return env_dir


def score(env_dir: Path, out_dir: Path, camera_ids: list[str]) -> tuple[dict[str, Scores], Scores]:
    return score_environment(env_dir / "ground_truth", out_dir, camera_ids)


# Where the summary's values start, so continuation lines line up under them.
_VALUE_COLUMN = 22
# Width the list of output files is wrapped to; commands, paths and URLs are never broken.
_WIDTH = 100


@dataclasses.dataclass(frozen=True, slots=True)
class Browse:
    """Where to look at the demo's task once the summary is printed.

    ``running``: the stack that ran the demo is still up (a ``spoton serve``), at
    ``facade_url``. Otherwise the demo's own stack has stopped and ``facade_url`` is where
    ``make serve`` will put the dashboard (its configured port; "" when that port is left free).
    """

    facade_url: str
    running: bool


def demo_summary(
    result: ProcessResult,
    per_camera: dict[str, Scores],
    cross: Scores,
    out_dir: Path,
    browse: Browse,
    authentication: str = "",
) -> str:
    """The summary ``spoton demo`` prints: scores, the files written, and how to browse them."""
    frames = f"{result.frames} global frames x {len(result.camera_ids)} cameras in {result.wall_s:.1f}s"
    files = ", ".join(sorted(path.name for path in result.exports)) or "no files"
    rows: list[tuple[str, list[str]]] = [
        ("task", [f"{result.task_id} ({result.state}{', ' + result.error if result.error else ''})"]),
        ("frames processed", [frames]),
        ("people tracked", [f"{result.local_tracks} local tracks"]),
        ("global IDs", [f"{result.global_ids}"]),
        ("IDF1 per camera", [", ".join(f"{cam} {s.idf1:.3f} (MOTA {s.mota:.3f})" for cam, s in per_camera.items())]),
        ("IDF1 cross-camera", [f"{cross.idf1:.3f} (MOTA {cross.mota:.3f}, ID switches {cross.id_switches})"]),
        ("outputs", [f"{out_dir.resolve()}/", *textwrap.wrap(files, _WIDTH - _VALUE_COLUMN, break_long_words=False)]),
        *_browse_rows(result.task_id, browse),
        *([("credentials", [authentication])] if authentication else []),
    ]
    out = ["", "SpotOn demo summary"]
    for label, (first, *more) in rows:
        out.append(f"  {label:<{_VALUE_COLUMN - 2}}{first}")
        out += [" " * _VALUE_COLUMN + value for value in more]
    return "\n".join([*out, ""])


def _browse_rows(task_id: str, browse: Browse) -> list[tuple[str, list[str]]]:
    if browse.running:
        return [
            ("dashboard", [f"{browse.facade_url}/ (task {task_id} is in its task list)"]),
            ("SSE", [f"{browse.facade_url}/api/v1/processing-tasks/{task_id}/events"]),
        ]
    where = f"open {browse.facade_url}/" if browse.facade_url else "open the dashboard URL it prints"
    return [
        (
            "to browse",
            [
                "the demo's stack has stopped: run `make serve` (or `spoton serve`),",
                f"{where} and reopen task {task_id} from the task list",
            ],
        )
    ]


def print_demo_summary(
    result: ProcessResult,
    per_camera: dict[str, Scores],
    cross: Scores,
    out_dir: Path,
    browse: Browse,
    authentication: str = "",
) -> None:
    print(demo_summary(result, per_camera, cross, out_dir, browse, authentication))
