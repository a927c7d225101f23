"""A processing task's end-to-end frames/s, and a replay of its own Triton calls.

The replay makes the calls the task's runner makes (``pipeline/runner.py``), on the same
decoded frames, with nothing else in between: per global frame, the detector on every
camera's frame concurrently (down to the tracker's low score), then one embedder call with
the crops of all cameras, the detector of the next global frame overlapping the embedder of
this one. The embedder calls are the ones the task's trackers asked for. No export records them, so
they are derived, untimed, before the replay: the service's own online tracker (built from
the same settings) is run over the raw detections the task exported
(``<camera>.detections.txt``, boxes rounded to 0.01 px), with embeddings from the real
embedder, and the crops of each global frame's ``needs_embedding`` are kept for the replay.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from serving_lib.streams import LOW_SCORE
from serving_lib.triton_direct import DirectTriton
from spoton.v1 import tasks_pb2
from spoton_client.client import SpotOnClient
from spoton_inference.files.environment_dir import load_environment_dir
from spoton_inference.pipeline.tracking_settings import tracking_setup
from spoton_inference.pipeline.triton_models import CROP_HEIGHT, CROP_WIDTH, crop_people
from spoton_inference.settings import Settings

FINAL_STATES = {tasks_pb2.TASK_STATE_COMPLETED, tasks_pb2.TASK_STATE_FAILED, tasks_pb2.TASK_STATE_CANCELLED}
# Global frames detected ahead of the embedder, as the runner's queue holds them.
REPLAY_AHEAD = 4


@dataclasses.dataclass(frozen=True, slots=True)
class TaskRun:
    task_id: str
    state: str
    # End to end, as its user waits for it: from the task's created_at to its final status's
    # emitted_at (preparing, media publishing, refinement and storage included).
    wall_s: float
    camera_frames: int
    events: int

    @property
    def fps(self) -> float:
        return self.camera_frames / self.wall_s if self.wall_s > 0 else float("nan")


async def run_task(client: SpotOnClient, environment_id: str, camera_frames: int) -> TaskRun:
    """Start a task over the environment and follow it over WatchTask until it ends."""
    task = await client.start_task(environment_id)
    return await follow_task(client, task, camera_frames)


async def follow_task(client: SpotOnClient, task: tasks_pb2.Task, camera_frames: int) -> TaskRun:
    state, events, ended_at = tasks_pb2.TASK_STATE_UNSPECIFIED, 0, None
    async for event in client.watch(task.task_id):
        events += 1
        if event.WhichOneof("payload") == "status_update":
            state = event.status_update.state
            if state in FINAL_STATES:
                ended_at = event.emitted_at.ToDatetime()
    wall = (ended_at - task.created_at.ToDatetime()).total_seconds() if ended_at else float("nan")
    name = tasks_pb2.TaskState.Name(state).removeprefix("TASK_STATE_").lower()
    return TaskRun(task.task_id, name, wall, camera_frames, events)


Detections = dict[tuple[str, int], tuple[np.ndarray, np.ndarray]]


def exported_detections(exports: Path) -> Detections:
    """``(camera, global frame index) -> (boxes x1,y1,x2,y2, scores)``: every raw detection the
    task's trackers were given, from MOTChallenge ``<camera>.detections.txt`` (frames from 1)."""
    rows: dict[tuple[str, int], list[list[float]]] = defaultdict(list)
    for path in exports.glob("*.detections.txt"):
        camera = path.name.removesuffix(".detections.txt")
        for line in path.read_text().splitlines():
            frame, _, x, y, w, h, score, *_ = (float(v) for v in line.split(","))
            rows[(camera, int(frame) - 1)].append([x, y, x + w, y + h, score])
    return {key: (np.array(v, np.float32)[:, :4], np.array(v, np.float32)[:, 4]) for key, v in rows.items()}


async def embedder_calls(
    triton: DirectTriton, env_dir: Path, frames: dict[str, list[np.ndarray]], detections: Detections, settings: Settings
) -> list[np.ndarray]:
    """Per global frame, the crops the task's trackers asked to embed (an empty array: no call)."""
    env = load_environment_dir(env_dir)
    tracker = tracking_setup(settings, env.cameras[0].fps).multicam(env.cameras)
    empty = (np.zeros((0, 4), np.float32), np.zeros((0,), np.float32))
    calls: list[np.ndarray] = []
    for g in range(max(len(f) for f in frames.values())):
        cams = [cam for cam, f in frames.items() if g < len(f)]
        plans = tracker.plan({cam: detections.get((cam, g), empty) for cam in cams})
        wanted = [(cam, list(plans[cam].needs_embedding)) for cam in cams if plans[cam].needs_embedding]
        cut = [crop_people(frames[cam][g], plans[cam].boxes[idx]) for cam, idx in wanted]
        crops = np.concatenate(cut) if cut else np.zeros((0, CROP_HEIGHT, CROP_WIDTH, 3), np.uint8)
        vectors = iter(await triton.embed(crops))
        tracker.update(g, plans, {cam: {i: next(vectors) for i in idx} for cam, idx in wanted})
        calls.append(crops)
    return calls


async def replay(triton: DirectTriton, frames: dict[str, list[np.ndarray]], crops: list[np.ndarray]) -> float:
    """Camera frames/s of the task's Triton calls replayed: ``crops[g]`` is global frame g's
    embedder call (none when empty)."""
    queue: asyncio.Queue[int | None] = asyncio.Queue(maxsize=REPLAY_AHEAD)

    async def detect_stage() -> None:
        for g in range(len(crops)):
            await asyncio.gather(*(triton.detect(f[g], LOW_SCORE) for f in frames.values() if g < len(f)))
            await queue.put(g)
        await queue.put(None)

    async def embed_stage() -> None:
        while (g := await queue.get()) is not None:
            await triton.embed(crops[g])

    started = time.perf_counter()
    await asyncio.gather(detect_stage(), embed_stage())
    return sum(len(f) for f in frames.values()) / (time.perf_counter() - started)
