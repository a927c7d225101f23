"""``spoton track SOURCE --out DIR``: track a video, a folder of videos or a live stream.

SOURCE is one of:

- a video file: uploaded through ``JobService.UploadJob`` (so it works against a remote stack,
  ``--target``, as well as a local one), which makes the single-camera environment, runs the
  task and renders the annotated video on the server; the task's exports and the video are
  downloaded;
- a folder of videos, one camera each (camera id: the file name without its extension): a
  temporary environment directory (``cameras/<id>/sub_video_01.mp4``, hard links where the
  file system allows, else copies) registered with ``RegisterEnvironmentFromDirectory``. The
  server reads that directory, so this needs a stack on this machine (``var/stack.json`` or the
  embedded one), not ``--target``; the annotated videos are drawn here with the server's own
  ``spoton_inference.pipeline.annotate``;
- an ``rtsp://``, ``rtsps://``, ``http://`` or ``https://`` URL: a temporary environment with one
  live camera that the server pulls, and a live task watched until ``--duration`` seconds or
  Ctrl-C, then cancelled; its tracking updates are written with the server's own export
  writer (a live task writes no exports of its own). No annotated video: the frames stay on
  the server.

``DIR`` gets ``<camera>.local.txt`` / ``<camera>.global.txt`` (MOTChallenge), ``trajectories.csv``,
``events.json``, ``<camera>.annotated.mp4`` and ``environment.json`` (the cameras, fps and
homographies used: ``spoton eval`` reads the homographies from it). The temporary environment
(or job) is deleted afterwards unless ``--keep`` (a kept folder environment keeps its directory,
``DIR/.spoton-track-*``).

Example:
    spoton track ../shared/real/tud-campus/cameras/c01/sub_video_01.mp4 --out var/track/tud
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import re
import shutil
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
from tqdm import tqdm

from spoton.v1 import catalog_pb2, common_pb2, jobs_pb2, tasks_pb2
from spoton_client.client import SpotOnClient
from spoton_client.homography_file import Homography, HomographyFileError, for_camera, load_homographies
from spoton_client.process import process_environment, wait_until_serving

if TYPE_CHECKING:
    from spoton_inference.domain.events import TrackingUpdate

LIVE_SCHEMES = {"rtsp": catalog_pb2.CAMERA_SOURCE_KIND_RTSP, "rtsps": catalog_pb2.CAMERA_SOURCE_KIND_RTSP,
                "http": catalog_pb2.CAMERA_SOURCE_KIND_HTTP, "https": catalog_pb2.CAMERA_SOURCE_KIND_HTTP}  # fmt: skip
# Files of a folder source that are taken as videos (anything FFmpeg reads would do; these keep
# notes, ground truth and thumbnails out).
VIDEO_SUFFIXES = {".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".ts", ".mjpeg", ".mjpg", ".wmv"}
# JobService names the single camera of an uploaded video so.
JOB_CAMERA = "camera"
LIVE_CAMERA = "camera"
ENVIRONMENT_FILE = "environment.json"
ANNOTATED_SUFFIX = ".annotated.mp4"
# The progress bar of a job counts thousandths of its progress (JobService reports 0..1).
PROGRESS_STEPS = 1000
CANCEL_TIMEOUT_S = 60.0
_ID_CHARS = re.compile(r"[^A-Za-z0-9_.-]+")


class TrackInputError(ValueError):
    """SOURCE or an option cannot be used; the message says why."""


@dataclasses.dataclass(frozen=True, slots=True)
class TrackOptions:
    homographies: dict[str, Homography]
    fps: float | None = None
    duration_s: float | None = None
    keep: bool = False
    show_progress: bool = True


@dataclasses.dataclass(frozen=True, slots=True)
class TrackResult:
    state: str  # completed, failed, cancelled (a live run that was stopped is completed)
    error: str
    camera_ids: tuple[str, ...]
    files: tuple[Path, ...]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", help="a video file, a folder of videos (one camera each), or an rtsp:// URL")
    parser.add_argument("--out", type=Path, required=True, help="where the results are written")
    parser.add_argument(
        "--homography", type=Path, help="JSON image->map homography (see spoton_client.homography_file)"
    )
    parser.add_argument("--fps", type=float, help="frame rate to use instead of the video's own")
    parser.add_argument("--duration", type=float, help="live sources: seconds to track (default: until Ctrl-C)")
    parser.add_argument("--target", help="gRPC target of a running SpotOn (default: var/stack.json, else embedded)")
    parser.add_argument(
        "--api-key", help="the key to call SpotOn with (default: SPOTON_API_KEY, else the local admin key)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary environment (or job) on the server")
    parser.add_argument("--no-progress", action="store_true")


async def run_command(args: argparse.Namespace) -> int:
    """``spoton track``; the exit status."""
    try:
        options = _options(args)
        if not _is_url(args.source) and Path(args.source).is_dir() and args.target:
            raise TrackInputError(
                "a folder of videos is registered as a directory the server reads, so it needs a stack on this "
                "machine (leave out --target); upload its videos one by one to a remote stack instead"
            )
        if args.target:
            async with SpotOnClient(args.target, api_key=args.api_key) as client:
                result = await track(client, args.source, args.out, options)
        else:
            from spoton_inference.launch import local_api_key, stack_for_run
            from spoton_inference.settings import Settings

            settings = Settings.from_env()
            async with (
                stack_for_run(settings) as endpoints,
                SpotOnClient(endpoints.grpc_target, api_key=args.api_key or local_api_key(settings)) as client,
            ):
                result = await track(client, args.source, args.out, options)
    except (TrackInputError, HomographyFileError) as exc:
        print(f"spoton track: {exc}", file=sys.stderr)
        return 2
    except grpc.aio.AioRpcError as exc:
        print(f"spoton track: {exc.code().name}: {exc.details()}", file=sys.stderr)
        return 1
    print(f"{result.state}{' - ' + result.error if result.error else ''}: cameras {', '.join(result.camera_ids)}")
    print(f"  written to {args.out}: {', '.join(p.name for p in result.files)}")
    return 0 if result.state == "completed" else 1


async def track(client: SpotOnClient, source: str, out_dir: Path, options: TrackOptions) -> TrackResult:
    """Track ``source`` on the stack ``client`` talks to; results go to ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    await wait_until_serving(client)
    if _is_url(source):
        return await _track_live(client, source, out_dir, options)
    path = Path(source)
    if path.is_dir():
        return await _track_folder(client, path, out_dir, options)
    if path.is_file():
        return await _track_file(client, path, out_dir, options)
    raise TrackInputError(f"{source} is neither a file, a folder nor an rtsp/http URL")


def _options(args: argparse.Namespace) -> TrackOptions:
    if args.fps is not None and not args.fps > 0:
        raise TrackInputError(f"--fps must be positive, got {args.fps}")
    if args.duration is not None and not args.duration > 0:
        raise TrackInputError(f"--duration must be positive, got {args.duration}")
    if not _is_url(args.source):
        if not Path(args.source).exists():
            raise TrackInputError(f"{args.source} does not exist (SOURCE: a video file, a folder, or an rtsp/http URL)")
        if args.duration is not None:
            raise TrackInputError("--duration is for live sources (rtsp/http URLs); a file is tracked to its end")
        if Path(args.source).is_dir():
            _folder_cameras(Path(args.source))  # says now, before any stack starts, when there are no videos
    homographies = load_homographies(args.homography) if args.homography else {}
    if not (not _is_url(args.source) and Path(args.source).is_dir()) and len(homographies) > 1:
        raise TrackInputError(
            f"{args.homography} gives homographies for cameras {sorted(homographies)}; one video is one camera: "
            "give its homography object alone"
        )
    return TrackOptions(homographies, args.fps, args.duration, args.keep, not args.no_progress)


def _single_homography(homographies: dict[str, Homography]) -> Homography | None:
    """A one-camera source's homography, whatever camera id the file gave it."""
    return next(iter(homographies.values()), None)


def _is_url(source: str) -> bool:
    return source.split("://", 1)[0].lower() in LIVE_SCHEMES if "://" in source else False


def _homography_proto(spec: Homography) -> catalog_pb2.Homography:
    return catalog_pb2.Homography(
        image_points=[common_pb2.MapPoint(x=u, y=v) for u, v in spec.get("image_points", [])],
        map_points=[common_pb2.MapPoint(x=x, y=y) for x, y in spec.get("map_points", [])],
        matrix=spec.get("matrix", []),
    )


def _write_environment(out_dir: Path, environment_id: str, cameras: list[dict]) -> Path:
    """The record ``spoton eval`` reads the homographies from: environment.json's format."""
    path = out_dir / ENVIRONMENT_FILE
    doc = {"id": environment_id, "cameras": [{k: v for k, v in c.items() if v is not None} for c in cameras]}
    path.write_text(json.dumps(doc, indent=1) + "\n")
    return path


# --- a video file: a job --------------------------------------------------------------------


async def _track_file(client: SpotOnClient, path: Path, out_dir: Path, options: TrackOptions) -> TrackResult:
    homography = _single_homography(options.homographies)
    meta = jobs_pb2.JobUploadMetadata(filename=path.name, name=f"spoton track {path.name}")
    if options.fps:
        meta.fps = options.fps
    if homography:
        meta.homography.CopyFrom(_homography_proto(homography))
    job = await client.upload_job(path, meta)
    try:
        job = await _follow_job(client, job, options.show_progress)
    except asyncio.CancelledError:  # Ctrl-C: stop the server's work too
        with contextlib.suppress(grpc.aio.AioRpcError, TimeoutError):
            await asyncio.shield(
                client.jobs.CancelJob(jobs_pb2.CancelJobRequest(job_id=job.job_id), timeout=CANCEL_TIMEOUT_S)
            )
        raise
    state = jobs_pb2.JobState.Name(job.state).removeprefix("JOB_STATE_").lower()
    files: list[Path] = []
    if job.state == jobs_pb2.JOB_STATE_COMPLETED:
        files += await client.download_exports(job.task_id, out_dir)
        files.append(
            await client.download_job_result(
                job.job_id, jobs_pb2.JOB_RESULT_KIND_VIDEO, out_dir / f"{JOB_CAMERA}{ANNOTATED_SUFFIX}"
            )
        )
        fps = job.fps_override if job.HasField("fps_override") else job.video.fps
        files.append(
            _write_environment(out_dir, job.environment_id, [{"id": JOB_CAMERA, "fps": fps, "homography": homography}])
        )
    if not options.keep and job.state != jobs_pb2.JOB_STATE_RUNNING:
        await client.delete_job(job.job_id)
    return TrackResult(state, job.error, (JOB_CAMERA,), tuple(sorted(files)))


async def _follow_job(client: SpotOnClient, uploaded: jobs_pb2.Job, show_progress: bool) -> jobs_pb2.Job:
    job = uploaded
    with tqdm(total=PROGRESS_STEPS, desc="queued", unit="‰", disable=None if show_progress else True) as bar:
        async for job in client.watch_job(uploaded.job_id):
            bar.n = round(job.progress * PROGRESS_STEPS)
            bar.set_description(job.step or "queued", refresh=False)
            if job.total_frames:
                bar.set_postfix_str(f"frames {job.frames_processed}/{job.total_frames}", refresh=False)
            bar.refresh()
    return job


# --- a folder of videos: a temporary environment directory ------------------------------------


def _folder_cameras(folder: Path) -> dict[str, Path]:
    videos = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
    if not videos:
        raise TrackInputError(f"no videos in {folder} (looked for {', '.join(sorted(VIDEO_SUFFIXES))})")
    cameras: dict[str, Path] = {}
    for video in videos:
        cam = _ID_CHARS.sub("_", video.stem).strip("_.-")[:64] or "camera"
        if cam in cameras:
            raise TrackInputError(f"{cameras[cam].name} and {video.name} would both be camera {cam!r}; rename one")
        cameras[cam] = video
    return cameras


def _link_or_copy(source: Path, target: Path) -> None:
    # link(2) does not follow a symlink: link what it points to (the server refuses links out).
    try:
        os.link(source.resolve(), target)
    except OSError:  # another file system, or links not allowed
        shutil.copyfile(source, target)


async def _track_folder(client: SpotOnClient, folder: Path, out_dir: Path, options: TrackOptions) -> TrackResult:
    cameras = _folder_cameras(folder)
    unknown = sorted(options.homographies.keys() - cameras.keys() - {"*"})
    if unknown:
        raise TrackInputError(f"the homography file names cameras {unknown}; the folder has {sorted(cameras)}")
    env_id = f"track-{uuid.uuid4().hex[:12]}"
    specs = [
        {"id": cam, "name": video.name, "fps": options.fps, "homography": for_camera(options.homographies, cam)}
        for cam, video in cameras.items()
    ]
    # Inside DIR, so hard links work whenever the videos and DIR share a file system.
    env_dir = Path(tempfile.mkdtemp(prefix=".spoton-track-", dir=out_dir))
    try:
        _write_environment(env_dir, env_id, specs)
        for cam, video in cameras.items():
            (env_dir / "cameras" / cam).mkdir(parents=True)
            await asyncio.to_thread(_link_or_copy, video, env_dir / "cameras" / cam / "sub_video_01.mp4")
        result = await process_environment(client, env_dir, out_dir, show_progress=options.show_progress)
        fps = {c.camera_id: c.fps for c in (await client.get_environment(env_id)).cameras}
        files = list(result.exports)
        if result.state == "completed":
            for cam, video in cameras.items():
                files.append(await _render(video, out_dir / f"{cam}.global.txt", out_dir / f"{cam}{ANNOTATED_SUFFIX}",
                                           fps[cam], options.show_progress))  # fmt: skip
        for spec in specs:
            spec["fps"] = fps[spec["id"]]
        files.append(_write_environment(out_dir, env_id, specs))
    finally:
        # Also after a failure or Ctrl-C (NOT_FOUND: it was never registered). A kept environment
        # keeps its directory too: the server registered it from there.
        if not options.keep:
            shutil.rmtree(env_dir, ignore_errors=True)
            with contextlib.suppress(grpc.aio.AioRpcError):
                await asyncio.shield(client.delete_environment(env_id))
    return TrackResult(result.state, result.error, tuple(cameras), tuple(sorted(files)))


async def _render(video: Path, tracks: Path, out: Path, fps: float, show_progress: bool) -> Path:
    """The server's renderer, run here: the boxes, ids and trails a job's video gets."""
    from spoton_inference.pipeline.annotate import render_annotated

    stop = threading.Event()
    with tqdm(desc=f"rendering {out.name}", unit="frame", disable=None if show_progress else True) as bar:
        try:
            await asyncio.to_thread(render_annotated, video, tracks, out, fps, lambda n: bar.update(1), stop)
        finally:
            stop.set()  # a cancelled render ends at its next frame
    return out


# --- a live stream: a temporary environment with one pulled camera ---------------------------


async def _track_live(client: SpotOnClient, url: str, out_dir: Path, options: TrackOptions) -> TrackResult:
    from spoton_inference.pipeline.exports import ExportWriter

    fps = options.fps or await _probe_fps(client, url)
    homography = _single_homography(options.homographies)
    env_id = f"track-{uuid.uuid4().hex[:12]}"
    camera = catalog_pb2.Camera(
        camera_id=LIVE_CAMERA,
        name=url.split("@")[-1],  # never the credentials
        fps=fps,
        source=catalog_pb2.CameraSource(kind=LIVE_SCHEMES[url.split("://", 1)[0].lower()], url=url),
    )
    if homography:
        camera.homography.CopyFrom(_homography_proto(homography))
    await client.create_environment(
        catalog_pb2.Environment(environment_id=env_id, name=f"spoton track {camera.name}", cameras=[camera])
    )
    writer = ExportWriter(out_dir, [LIVE_CAMERA], fps)
    state, error = "completed", ""
    try:
        task = await client.start_task(env_id)
        started = time.monotonic()
        with tqdm(desc="live", unit="frame", disable=None if options.show_progress else True) as bar:
            try:
                async with asyncio.timeout(options.duration_s):
                    async for event in client.watch(task.task_id):
                        kind = event.WhichOneof("payload")
                        if kind == "tracking_update":
                            writer.add(_core_update(event.tracking_update))
                            bar.update(1)
                        elif kind == "status_update" and event.status_update.state in _ENDED:
                            state = tasks_pb2.TaskState.Name(event.status_update.state).removeprefix("TASK_STATE_")
                            state, error = state.lower(), event.status_update.error
            except TimeoutError:
                pass  # --duration is over
            except asyncio.CancelledError:
                # Ctrl-C is how an open-ended live run ends: write what was tracked and return.
                if (current := asyncio.current_task()) is None or current.uncancel() > 0:
                    raise
            finally:
                bar.set_postfix_str(f"{time.monotonic() - started:.0f} s")
                with contextlib.suppress(grpc.aio.AioRpcError):
                    await asyncio.shield(client.control_task(task.task_id, tasks_pb2.TASK_ACTION_CANCEL))
    finally:
        files = [p for p in writer.close() if p.parent == out_dir]
        files.append(_write_environment(out_dir, env_id, [{"id": LIVE_CAMERA, "fps": fps, "homography": homography}]))
        if not options.keep:
            with contextlib.suppress(grpc.aio.AioRpcError):
                await asyncio.shield(client.delete_environment(env_id))
    return TrackResult(state, error, (LIVE_CAMERA,), tuple(sorted(set(files))))


_ENDED = (tasks_pb2.TASK_STATE_COMPLETED, tasks_pb2.TASK_STATE_FAILED, tasks_pb2.TASK_STATE_CANCELLED)


async def _probe_fps(client: SpotOnClient, url: str) -> float:
    """The stream's frame rate, as the server sees it (it pulls the stream, not this machine)."""
    probe = await client.test_connection(url)
    if not probe.ok:
        raise TrackInputError(f"the server cannot read {probe.source_url or url}: {probe.error_kind} - {probe.reason}")
    if not probe.fps > 0:
        raise TrackInputError("the stream does not say its frame rate; give --fps")
    return probe.fps


def _core_update(update: tasks_pb2.TrackingUpdate) -> TrackingUpdate:
    """The protobuf update as the export writer's domain type."""
    from spoton_inference.domain.events import CameraTracksOut, TrackingUpdate, TrackOut

    return TrackingUpdate(
        global_frame_index=update.global_frame_index,
        environment_id=update.environment_id,
        timestamp_processed_utc=update.timestamp_processed_utc.ToDatetime().timestamp(),
        cameras=[
            CameraTracksOut(
                camera_id=cam.camera_id,
                image_source=cam.image_source,
                frame_index_in_source=cam.frame_index_in_source,
                tracks=[
                    TrackOut(
                        (t.box.x1, t.box.y1, t.box.x2, t.box.y2),
                        t.score,
                        t.track_id,
                        t.global_id,
                        (t.map_coords.x, t.map_coords.y) if t.HasField("map_coords") else None,
                    )
                    for t in cam.tracks
                ],
            )
            for cam in update.cameras
        ],
    )
