"""REST request bodies to gRPC request messages: field for field, no decisions.

The inference service validates; these only carry what the client sent, so a field left out
of a PATCH body stays unset (proto3 ``optional``) and the service leaves it as it is.
"""

from __future__ import annotations

from spoton.v1 import analytics_pb2, catalog_pb2, common_pb2, sinks_pb2, tasks_pb2
from spoton_facade.convert import enum_number
from spoton_facade.schemas.analytics import ZoneBody, ZonePatchBody
from spoton_facade.schemas.base import Point
from spoton_facade.schemas.catalog import (
    CameraBody,
    CameraPatchBody,
    CameraSourceBody,
    EnvironmentBody,
    EnvironmentPatchBody,
    HomographyBody,
)
from spoton_facade.schemas.sinks import SinkBody, SinkPatchBody
from spoton_facade.schemas.tasks import ControlTaskBody


def _points(points: list[Point]) -> list[common_pb2.MapPoint]:
    return [common_pb2.MapPoint(x=x, y=y) for x, y in points]


def homography(body: HomographyBody) -> catalog_pb2.Homography:
    return catalog_pb2.Homography(
        image_points=_points(body.image_points), map_points=_points(body.map_points), matrix=body.matrix
    )


def camera_source(body: CameraSourceBody) -> catalog_pb2.CameraSource:
    return catalog_pb2.CameraSource(
        kind=enum_number(catalog_pb2.CameraSourceKind.DESCRIPTOR, body.kind) if body.kind else 0,
        url=body.url,
        username=body.username,
        password=body.password,
    )


def camera(body: CameraBody) -> catalog_pb2.Camera:
    out = catalog_pb2.Camera(
        camera_id=body.camera_id,
        name=body.name,
        fps=body.fps,
        width=body.width,
        height=body.height,
        group_id=body.group_id,
        detection_threshold=body.detection_threshold,
        location=body.location,
        enabled=body.enabled,
    )
    if body.homography is not None:
        out.homography.CopyFrom(homography(body.homography))
    if body.source is not None:
        out.source.CopyFrom(camera_source(body.source))
    return out


def environment(body: EnvironmentBody) -> catalog_pb2.Environment:
    return catalog_pb2.Environment(
        environment_id=body.environment_id,
        name=body.name,
        map=catalog_pb2.FloorMap(metres_per_pixel=body.metres_per_pixel),
        cameras=[camera(c) for c in body.cameras],
    )


def environment_update(environment_id: str, body: EnvironmentPatchBody) -> catalog_pb2.UpdateEnvironmentRequest:
    return catalog_pb2.UpdateEnvironmentRequest(
        environment_id=environment_id, name=body.name, metres_per_pixel=body.metres_per_pixel
    )


def camera_update(environment_id: str, camera_id: str, body: CameraPatchBody) -> catalog_pb2.UpdateCameraRequest:
    # None leaves a proto3 optional field unset.
    request = catalog_pb2.UpdateCameraRequest(
        environment_id=environment_id,
        camera_id=camera_id,
        name=body.name,
        fps=body.fps,
        width=body.width,
        height=body.height,
        clear_homography=body.clear_homography,
        group_id=body.group_id,
        detection_threshold=body.detection_threshold,
        clear_detection_threshold=body.clear_detection_threshold,
        location=body.location,
        enabled=body.enabled,
    )
    if body.homography is not None:
        request.homography.CopyFrom(homography(body.homography))
    if body.source is not None:
        request.source.CopyFrom(camera_source(body.source))
    return request


def control(task_id: str, body: ControlTaskBody) -> tasks_pb2.ControlTaskRequest:
    return tasks_pb2.ControlTaskRequest(
        task_id=task_id,
        action=enum_number(tasks_pb2.TaskAction.DESCRIPTOR, body.action),
        focus_global_id=body.global_id,
    )


def zone(body: ZoneBody) -> analytics_pb2.Zone:
    return analytics_pb2.Zone(zone_id=body.zone_id, name=body.name, polygon=_points(body.polygon))


def zone_update(environment_id: str, zone_id: str, body: ZonePatchBody) -> analytics_pb2.UpdateZoneRequest:
    # None leaves the name unset; an absent or empty polygon keeps the old one.
    return analytics_pb2.UpdateZoneRequest(
        environment_id=environment_id, zone_id=zone_id, name=body.name, polygon=_points(body.polygon or [])
    )


def sink(environment_id: str, body: SinkBody) -> sinks_pb2.CreateSinkRequest:
    return sinks_pb2.CreateSinkRequest(
        environment_id=environment_id,
        name=body.name,
        kind=enum_number(sinks_pb2.SinkKind.DESCRIPTOR, body.kind),
        url=body.url,
        event_types=list(body.event_types),
        secret=body.secret,
        topic_prefix=body.topic_prefix,
        enabled=body.enabled,
    )


def sink_update(sink_id: str, body: SinkPatchBody) -> sinks_pb2.UpdateSinkRequest:
    request = sinks_pb2.UpdateSinkRequest(
        sink_id=sink_id,
        name=body.name,
        url=body.url,
        secret=body.secret,
        topic_prefix=body.topic_prefix,
        enabled=body.enabled,
    )
    if body.event_types is not None:  # absent keeps them; a list (even empty) replaces them
        request.event_types.values.extend(body.event_types)
    return request
