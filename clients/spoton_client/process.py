"""Run one processing task over an environment directory and collect its exports.

This is what ``spoton process`` and ``spoton demo`` do; benchmarks call it too.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections import Counter
from pathlib import Path

import grpc
from tqdm import tqdm

from spoton.v1 import system_pb2, tasks_pb2
from spoton_client.client import SpotOnClient


@dataclasses.dataclass(frozen=True, slots=True)
class ProcessResult:
    task_id: str
    environment_id: str
    camera_ids: tuple[str, ...]
    state: str
    error: str
    frames: int
    local_tracks: int
    global_ids: int
    event_counts: dict[str, int]
    exports: tuple[Path, ...]
    wall_s: float


async def wait_until_serving(client: SpotOnClient, timeout_s: float = 300.0) -> system_pb2.GetHealthResponse:
    """Poll the detailed health until the service is past 'starting'."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            health = await client.health()
            if health.status != "starting":
                return health
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.UNAVAILABLE:
                raise
        if time.monotonic() > deadline:
            raise TimeoutError(f"SpotOn at {client.target} was not ready within {timeout_s:.0f}s")
        await asyncio.sleep(0.5)


async def process_environment(
    client: SpotOnClient,
    env_dir: Path | str,
    out_dir: Path,
    camera_ids: list[str] | None = None,
    show_progress: bool = True,
) -> ProcessResult:
    started = time.monotonic()
    await wait_until_serving(client)
    env = await client.register_environment(env_dir)
    task = await client.start_task(env.environment_id, camera_ids)
    counts: Counter[str] = Counter()
    # Per global frame, its tracks as (camera, local id, global id): refined frames replace online ones.
    frames: dict[int, list[tuple[str, int, int]]] = {}
    state, error = task.state, ""
    try:
        with tqdm(
            total=task.total_frames, unit="frame", desc="processing", disable=None if show_progress else True
        ) as bar:
            async for event in client.watch(task.task_id):
                kind = event.WhichOneof("payload")
                counts[kind] += 1
                if kind == "tracking_update":
                    bar.update(1)
                    frames[event.tracking_update.global_frame_index] = _tracks(event.tracking_update)
                elif kind == "tracks_refined":
                    refined = event.tracks_refined
                    for frame in range(refined.start_global_frame_index, refined.end_global_frame_index):
                        frames.pop(frame, None)
                    for update in refined.updates:
                        frames[update.global_frame_index] = _tracks(update)
                elif kind == "status_update":
                    state, error = event.status_update.state, event.status_update.error
                    bar.set_postfix_str(event.status_update.step)
    except asyncio.CancelledError:  # Ctrl-C: stop the server's work too, not only the watch
        with contextlib.suppress(grpc.aio.AioRpcError):
            await asyncio.shield(client.control_task(task.task_id, tasks_pb2.TASK_ACTION_CANCEL))
        raise
    exports = await client.download_exports(task.task_id, out_dir)
    return ProcessResult(
        task_id=task.task_id,
        environment_id=env.environment_id,
        camera_ids=tuple(task.camera_ids),
        state=tasks_pb2.TaskState.Name(state).removeprefix("TASK_STATE_").lower(),
        error=error,
        frames=counts["tracking_update"],
        local_tracks=len({(cam, local) for tracks in frames.values() for cam, local, _ in tracks}),
        global_ids=len({gid for tracks in frames.values() for _, _, gid in tracks}),
        event_counts=dict(counts),
        exports=tuple(exports),
        wall_s=time.monotonic() - started,
    )


def _tracks(update: tasks_pb2.TrackingUpdate) -> list[tuple[str, int, int]]:
    return [(cam.camera_id, t.track_id, t.global_id) for cam in update.cameras for t in cam.tracks]
