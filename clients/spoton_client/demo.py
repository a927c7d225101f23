"""The demo: a generated environment with ground truth, processed and scored."""

from __future__ import annotations

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


def print_demo_summary(
    result: ProcessResult,
    per_camera: dict[str, Scores],
    cross: Scores,
    out_dir: Path,
    facade_url: str,
    authentication: str = "",
) -> None:
    lines = [
        "",
        "SpotOn demo summary",
        f"  task                {result.task_id} ({result.state}{', ' + result.error if result.error else ''})",
        f"  frames processed    {result.frames} global frames x {len(result.camera_ids)} cameras"
        f" in {result.wall_s:.1f}s",
        f"  people tracked      {result.local_tracks} local tracks",
        f"  global IDs          {result.global_ids}",
        "  IDF1 per camera     "
        + ", ".join(f"{cam} {s.idf1:.3f} (MOTA {s.mota:.3f})" for cam, s in per_camera.items()),
        f"  IDF1 cross-camera   {cross.idf1:.3f} (MOTA {cross.mota:.3f}, ID switches {cross.id_switches})",
        f"  exports             {out_dir.resolve()}",
        f"  dashboard           {facade_url}/",
        f"  SSE                 {facade_url}/api/v1/processing-tasks/{result.task_id}/events",
        *([f"  credentials         {authentication}"] if authentication else []),
        "",
    ]
    print("\n".join(lines))
