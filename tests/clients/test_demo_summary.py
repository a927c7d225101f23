"""What `spoton demo` ends with: the outputs it wrote and a way to browse them that works.

A demo run on its own stack stops that stack before printing, so its summary must not hand
out that stack's URLs; it says to run `make serve` and where the dashboard will then be.
"""

from __future__ import annotations

from pathlib import Path

from spoton_client.demo import Browse, demo_summary
from spoton_client.process import ProcessResult
from spoton_client.scoring import Scores


def _result(out_dir: Path) -> ProcessResult:
    names = ("cam1.mp4", "cam1.mot.txt", "cam2.mp4", "cam2.mot.txt", "trajectories.csv", "events.jsonl")
    return ProcessResult(
        task_id="task-7",
        environment_id="synthetic-hall",
        camera_ids=("cam1", "cam2"),
        state="completed",
        error="",
        frames=120,
        local_tracks=9,
        global_ids=4,
        event_counts={},
        exports=tuple(out_dir / name for name in names),
        wall_s=12.5,
    )


def _summary(tmp_path: Path, browse: Browse) -> str:
    scores = Scores(idf1=0.9, mota=0.8, id_switches=1, num_frames=120)
    return demo_summary(
        _result(tmp_path), {"cam1": scores, "cam2": scores}, scores, tmp_path, browse, "admin API key in x"
    )


def _unwrapped(text: str) -> str:
    """The summary with its wrapped lines joined and its columns closed up, as a reader reads it."""
    return " ".join(text.split())


def test_after_its_own_stack_stopped_it_points_at_make_serve(tmp_path: Path) -> None:
    text = _summary(tmp_path, Browse("http://127.0.0.1:8080", running=False))
    flat = _unwrapped(text)
    assert f"  outputs             {tmp_path.resolve()}/\n" in text
    assert "cam1.mot.txt, cam1.mp4, cam2.mot.txt, cam2.mp4, events.jsonl, trajectories.csv" in flat
    assert (
        "the demo's stack has stopped: run `make serve` (or `spoton serve`), open http://127.0.0.1:8080/ "
        "and reopen task task-7 from the task list" in flat
    )
    # No URL of the stopped stack: no SSE link, no dashboard row.
    assert "/events" not in text and "dashboard " not in text
    assert "credentials         admin API key in x" in text


def test_a_facade_port_left_free_has_no_url_to_promise(tmp_path: Path) -> None:
    flat = _unwrapped(_summary(tmp_path, Browse("", running=False)))
    assert "run `make serve` (or `spoton serve`), open the dashboard URL it prints and reopen task task-7" in flat


def test_on_a_running_serve_it_links_the_live_dashboard(tmp_path: Path) -> None:
    text = _summary(tmp_path, Browse("http://127.0.0.1:9080", running=True))
    assert "  dashboard           http://127.0.0.1:9080/ (task task-7 is in its task list)" in text
    assert "  SSE                 http://127.0.0.1:9080/api/v1/processing-tasks/task-7/events" in text
    assert "make serve" not in text
