"""Core dataclasses to protobuf messages: the only place that knows both."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from spoton.v1 import catalog_pb2, common_pb2, system_pb2, tasks_pb2
from spoton_inference.domain.camera_source import SourceInput, SourceKind
from spoton_inference.domain.environment import Camera, Environment, EnvironmentOrigin
from spoton_inference.domain.events import (
    BatchProcessingComplete,
    FocusUpdate,
    MediaAvailable,
    StatusUpdate,
    TaskEvent,
    TaskState,
    TrackingUpdate,
    TracksRefined,
    ZoneEvent,
)
from spoton_inference.domain.geometry import HomographySpec
from spoton_inference.domain.probe_result import ProbeResult
from spoton_inference.domain.tasks import TaskRecord
from spoton_inference.services.camera_health import CameraHealthReport
from spoton_inference.services.catalog import CameraPatch, CameraSpec, EnvironmentPatch, EnvironmentSpec
from spoton_inference.services.health import HealthReport
from spoton_inference.services.tasks import TaskAction

STATE_TO_PROTO = {s: tasks_pb2.TaskState.Value(f"TASK_STATE_{s.name}") for s in TaskState}
PROTO_TO_STATE = {v: k for k, v in STATE_TO_PROTO.items()}
SOURCE_KIND_TO_PROTO = {k: catalog_pb2.CameraSourceKind.Value(f"CAMERA_SOURCE_KIND_{k.name}") for k in SourceKind}
PROTO_TO_SOURCE_KIND = {v: k for k, v in SOURCE_KIND_TO_PROTO.items()}
ORIGIN_TO_PROTO = {o: catalog_pb2.EnvironmentOrigin.Value(f"ENVIRONMENT_ORIGIN_{o.name}") for o in EnvironmentOrigin}
PROTO_TO_ORIGIN = {v: k for k, v in ORIGIN_TO_PROTO.items()}
PROTO_TO_ACTION = {tasks_pb2.TaskAction.Value(f"TASK_ACTION_{a.name}"): a for a in TaskAction}


def timestamp(value: dt.datetime | float) -> Timestamp:
    ts = Timestamp()
    if isinstance(value, dt.datetime):
        ts.FromDatetime(value.astimezone(dt.UTC))
    else:
        ts.FromNanoseconds(int(value * 1e9))
    return ts


def task(record: TaskRecord, last_sequence: int = 0, focus_global_id: int = 0) -> tasks_pb2.Task:
    return tasks_pb2.Task(
        task_id=record.task_id,
        environment_id=record.environment_id,
        camera_ids=record.camera_ids,
        state=STATE_TO_PROTO[record.state],
        progress=record.progress,
        step=record.step,
        error=record.error,
        created_at=timestamp(record.created_at),
        updated_at=timestamp(record.updated_at),
        frames_processed=record.frames_processed,
        total_frames=record.total_frames,
        last_sequence=last_sequence,
        focus_global_id=focus_global_id,
    )


def task_event(event: TaskEvent) -> tasks_pb2.TaskEvent:
    out = tasks_pb2.TaskEvent(sequence=event.sequence, task_id=event.task_id, emitted_at=timestamp(event.emitted_at))
    p = event.payload
    if isinstance(p, StatusUpdate):
        out.status_update.CopyFrom(
            tasks_pb2.StatusUpdate(state=STATE_TO_PROTO[p.state], progress=p.progress, step=p.step, error=p.error)
        )
    elif isinstance(p, MediaAvailable):
        out.media_available.sub_video_batch_index = p.sub_video_batch_index
        for m in p.media_urls:
            out.media_available.media_urls.add(
                camera_id=m.camera_id,
                sub_video_filename=m.sub_video_filename,
                url=m.url,
                start_global_frame_index=m.start_global_frame_index,
                num_frames_in_sub_video=m.num_frames_in_sub_video,
                fps=m.fps,
            )
    elif isinstance(p, TrackingUpdate):
        out.tracking_update.CopyFrom(tracking_update(p))
    elif isinstance(p, TracksRefined):
        out.tracks_refined.CopyFrom(
            tasks_pb2.TracksRefined(
                sub_video_batch_index=p.sub_video_batch_index,
                start_global_frame_index=p.start_global_frame_index,
                end_global_frame_index=p.end_global_frame_index,
                updates=[tracking_update(u) for u in p.updates],
            )
        )
    elif isinstance(p, BatchProcessingComplete):
        out.batch_processing_complete.sub_video_batch_index = p.sub_video_batch_index
    elif isinstance(p, FocusUpdate):
        out.focus_update.global_id = p.global_id
    elif isinstance(p, ZoneEvent):
        out.zone_event.CopyFrom(
            tasks_pb2.ZoneEvent(
                kind=p.kind,
                zone_id=p.zone_id,
                zone_name=p.zone_name,
                global_id=p.global_id,
                global_frame_index=p.global_frame_index,
                camera_id=p.camera_id,
                map_coords=common_pb2.MapPoint(x=p.map_coords[0], y=p.map_coords[1]),
            )
        )
    return out


def tracking_update(p: TrackingUpdate) -> tasks_pb2.TrackingUpdate:
    msg = tasks_pb2.TrackingUpdate(
        global_frame_index=p.global_frame_index,
        scene_id=p.environment_id,
        environment_id=p.environment_id,
        timestamp_processed_utc=timestamp(p.timestamp_processed_utc),
    )
    for cam in p.cameras:
        c = msg.cameras.add(
            camera_id=cam.camera_id, image_source=cam.image_source, frame_index_in_source=cam.frame_index_in_source
        )
        for t in cam.tracks:
            add_track(c.tracks, t.box, t.score, t.track_id, t.global_id, t.map_coords)
    return msg


def add_track(
    tracks: Any,
    box: Sequence[float],
    score: float,
    track_id: int,
    global_id: int,
    map_xy: tuple[float, float] | None,
) -> None:
    """Append one ``common.Track`` to a repeated field (tracking updates and StreamFrames share it)."""
    track = tracks.add(
        box=common_pb2.Box(x1=box[0], y1=box[1], x2=box[2], y2=box[3]),
        score=score,
        track_id=track_id,
        global_id=global_id,
    )
    if map_xy is not None:
        track.map_coords.x, track.map_coords.y = map_xy


def camera(cam: Camera) -> catalog_pb2.Camera:
    out = catalog_pb2.Camera(
        camera_id=cam.camera_id,
        name=cam.name,
        fps=cam.fps,
        width=cam.width,
        height=cam.height,
        sub_videos=[s.filename for s in cam.sub_videos],
        sub_video_frames=[s.num_frames for s in cam.sub_videos],
        group_id=cam.group_id or "",
        # The password itself never leaves the service.
        source=catalog_pb2.CameraSource(
            kind=SOURCE_KIND_TO_PROTO[cam.source.kind],
            url=cam.source.url,
            username=cam.source.username,
            password_set=cam.source.password_set,
            masked_url=cam.source.masked_url,
        ),
        detection_threshold=cam.detection_threshold,
        location=cam.location,
        enabled=cam.enabled,
    )
    if cam.homography is not None:
        h = cam.homography
        out.homography.matrix.extend(h.matrix.reshape(-1).tolist())
        out.homography.reprojection_error_m = h.reprojection_error()
        for (u, v), (x, y) in zip(h.image_points, h.map_points, strict=True):
            out.homography.image_points.add(x=u, y=v)
            out.homography.map_points.add(x=x, y=y)
    return out


def environment(env: Environment) -> catalog_pb2.Environment:
    return catalog_pb2.Environment(
        environment_id=env.environment_id,
        name=env.name,
        map=catalog_pb2.FloorMap(image_url=env.floor_map.image_url, metres_per_pixel=env.floor_map.metres_per_pixel),
        cameras=[camera(c) for c in env.cameras],
        source_dir=env.source,  # a directory or s3://bucket/prefix; never credentials
        origin=ORIGIN_TO_PROTO[env.origin],
    )


def health(report: HealthReport) -> system_pb2.GetHealthResponse:
    return system_pb2.GetHealthResponse(
        status=report.status,
        components=[
            system_pb2.ComponentHealth(
                name=c.name, status=c.status, detail=c.detail, restarts=c.restarts, last_exit=c.last_exit
            )
            for c in report.components
        ],
    )


# -- requests to core specs (validation happens in the core) ----------------------------


def homography_spec(h: catalog_pb2.Homography) -> HomographySpec:
    return HomographySpec(
        image_points=tuple((p.x, p.y) for p in h.image_points),
        map_points=tuple((p.x, p.y) for p in h.map_points),
        matrix=tuple(h.matrix),
    )


def camera_spec(cam: catalog_pb2.Camera) -> CameraSpec:
    return CameraSpec(
        camera_id=cam.camera_id,
        name=cam.name,
        fps=cam.fps,
        width=cam.width,
        height=cam.height,
        homography=homography_spec(cam.homography) if cam.HasField("homography") else None,
        group_id=cam.group_id,
        source=source_input(cam.source) if cam.HasField("source") else None,
        detection_threshold=cam.detection_threshold if cam.HasField("detection_threshold") else None,
        location=cam.location,
        enabled=cam.enabled if cam.HasField("enabled") else True,
    )


def environment_spec(env: catalog_pb2.Environment) -> EnvironmentSpec:
    return EnvironmentSpec(
        environment_id=env.environment_id,
        name=env.name,
        metres_per_pixel=env.map.metres_per_pixel,
        cameras=tuple(camera_spec(c) for c in env.cameras),
    )


def environment_patch(request: catalog_pb2.UpdateEnvironmentRequest) -> EnvironmentPatch:
    return EnvironmentPatch(
        name=request.name if request.HasField("name") else None,
        metres_per_pixel=request.metres_per_pixel if request.HasField("metres_per_pixel") else None,
    )


def camera_patch(request: catalog_pb2.UpdateCameraRequest) -> CameraPatch:
    optional = lambda name: getattr(request, name) if request.HasField(name) else None  # noqa: E731
    return CameraPatch(
        name=optional("name"),
        fps=optional("fps"),
        width=optional("width"),
        height=optional("height"),
        homography=homography_spec(request.homography) if request.HasField("homography") else None,
        clear_homography=request.clear_homography,
        group_id=optional("group_id"),
        source=source_input(request.source) if request.HasField("source") else None,
        detection_threshold=optional("detection_threshold"),
        clear_detection_threshold=request.clear_detection_threshold,
        location=optional("location"),
        enabled=optional("enabled"),
    )


def source_input(source: catalog_pb2.CameraSource) -> SourceInput:
    return SourceInput(
        kind=PROTO_TO_SOURCE_KIND.get(source.kind),
        url=source.url,
        username=source.username,
        password=source.password if source.HasField("password") else None,
    )


def connection_test(result: ProbeResult, masked_url: str) -> catalog_pb2.TestCameraConnectionResponse:
    return catalog_pb2.TestCameraConnectionResponse(
        ok=result.ok,
        reason=result.reason,
        error_kind=result.error_kind,
        codec=result.codec,
        width=result.width,
        height=result.height,
        fps=result.fps,
        time_to_first_frame_ms=result.first_frame_ms,
        source_url=masked_url,
    )


def camera_health(report: CameraHealthReport) -> catalog_pb2.ListCameraHealthResponse:
    return catalog_pb2.ListCameraHealthResponse(
        status=report.status,
        checks=[
            catalog_pb2.CameraHealthCheck(
                checked_at=timestamp(c.checked_at),
                status=c.status,
                latency_ms=c.latency_ms or 0.0,
                fps=c.fps,
                width=c.width,
                height=c.height,
                error=c.error,
            )
            for c in report.checks
        ],
    )
