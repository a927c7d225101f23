"""Every REST struct mirrors its ``spoton.v1`` message field by field, so proto and REST cannot drift.

Responses are built by :func:`~spoton_facade.schemas.base.from_proto`, which lets msgspec drop
any field the struct does not declare: a field added to a ``.proto`` would vanish from REST
without a sound. Here each struct is paired with the message it mirrors (:data:`MIRRORS`), and
every proto field must appear in the struct under its own name (or a listed rename) with a type
that maps, unless it is listed as deliberately omitted, with the reason. REST-only fields and
structs that mirror no message are listed the same way. Every struct in ``spoton_facade`` must
be paired or listed, and every listed name must still exist, so the lists only hold what is true.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import importlib
import pkgutil
import types
import typing
from collections.abc import Iterator, Mapping

import msgspec
import pytest
from google.protobuf.descriptor import Descriptor, FieldDescriptor

import spoton_facade
from spoton.v1 import analytics_pb2, auth_pb2, cameras_pb2, catalog_pb2, jobs_pb2, sinks_pb2, system_pb2, tasks_pb2
from spoton_facade.convert import enum_names
from spoton_facade.schemas import analytics, auth, camera_registry, cameras, catalog, health, jobs, sinks, tasks

# Field types as they reach REST (see spoton_facade.convert): the scalar kinds a proto type maps to.
_INTEGER_TYPES = {
    FieldDescriptor.TYPE_INT32,
    FieldDescriptor.TYPE_INT64,
    FieldDescriptor.TYPE_UINT32,
    FieldDescriptor.TYPE_UINT64,
    FieldDescriptor.TYPE_SINT32,
    FieldDescriptor.TYPE_SINT64,
    FieldDescriptor.TYPE_FIXED32,
    FieldDescriptor.TYPE_FIXED64,
    FieldDescriptor.TYPE_SFIXED32,
    FieldDescriptor.TYPE_SFIXED64,
}
_FLOAT_TYPES = {FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE}
_TIMESTAMP = "google.protobuf.Timestamp"
_MAP_POINT = "spoton.v1.MapPoint"

PATH = "in the URL path"
OUTPUT_ONLY = "set by the service, answered in the response message"


@dataclasses.dataclass(frozen=True)
class Mirror:
    """A REST struct and the proto message it mirrors, with every deliberate difference named."""

    struct: type[msgspec.Struct]
    message: Descriptor
    # Proto field (dotted within a flattened message) -> why REST leaves it out.
    omitted: Mapping[str, str] = dataclasses.field(default_factory=dict)
    # REST field -> the proto field it carries, when the names differ (dotted: flattened).
    renamed: Mapping[str, str] = dataclasses.field(default_factory=dict)
    # REST field -> why it has no proto field.
    rest_only: Mapping[str, str] = dataclasses.field(default_factory=dict)
    # REST field -> why its type is not the one the proto field maps to.
    retyped: Mapping[str, str] = dataclasses.field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.struct.__name__}->{self.message.name}"


MIRRORS: tuple[Mirror, ...] = (
    # -- responses (from_proto, or built by hand from the message) ------------------------------
    Mirror(health.ComponentHealth, system_pb2.ComponentHealth.DESCRIPTOR),
    Mirror(
        health.HealthReport,
        system_pb2.GetHealthResponse.DESCRIPTOR,
        rest_only={"facade": "the facade's own health, answered by no service"},
    ),
    Mirror(tasks.Task, tasks_pb2.Task.DESCRIPTOR),
    Mirror(tasks.TaskPage, tasks_pb2.ListTasksResponse.DESCRIPTOR),
    Mirror(catalog.Homography, catalog_pb2.Homography.DESCRIPTOR),
    Mirror(
        catalog.CameraSource,
        catalog_pb2.CameraSource.DESCRIPTOR,
        omitted={"password": "a secret: never answered; password_set says whether one is stored"},
    ),
    Mirror(catalog.Camera, catalog_pb2.Camera.DESCRIPTOR),
    Mirror(catalog.CameraList, catalog_pb2.ListCamerasResponse.DESCRIPTOR),
    Mirror(catalog.FloorMap, catalog_pb2.FloorMap.DESCRIPTOR),
    Mirror(catalog.Environment, catalog_pb2.Environment.DESCRIPTOR),
    Mirror(catalog.EnvironmentList, catalog_pb2.ListEnvironmentsResponse.DESCRIPTOR),
    Mirror(tasks.ExportFile, tasks_pb2.ExportFile.DESCRIPTOR),
    Mirror(tasks.ExportList, tasks_pb2.ListTaskExportsResponse.DESCRIPTOR),
    Mirror(analytics.TrajectoryPoint, analytics_pb2.TrajectoryPoint.DESCRIPTOR),
    Mirror(analytics.TrajectorySegment, analytics_pb2.TrajectorySegment.DESCRIPTOR),
    Mirror(analytics.Trajectory, analytics_pb2.Trajectory.DESCRIPTOR),
    Mirror(analytics.HeatmapCell, analytics_pb2.HeatmapCell.DESCRIPTOR),
    Mirror(
        analytics.Heatmap,
        analytics_pb2.Heatmap.DESCRIPTOR,
        omitted={
            "png": "the PNG is the route's image/png representation (format=png or Accept), not JSON",
            "png_width": "describes the PNG, which JSON does not carry",
            "png_height": "describes the PNG, which JSON does not carry",
        },
    ),
    Mirror(analytics.CountBucket, analytics_pb2.CountBucket.DESCRIPTOR),
    Mirror(analytics.Counts, analytics_pb2.Counts.DESCRIPTOR),
    Mirror(analytics.DwellEntry, analytics_pb2.DwellEntry.DESCRIPTOR),
    Mirror(analytics.Dwell, analytics_pb2.Dwell.DESCRIPTOR),
    Mirror(analytics.Zone, analytics_pb2.Zone.DESCRIPTOR),
    Mirror(analytics.ZoneList, analytics_pb2.ListZonesResponse.DESCRIPTOR),
    Mirror(
        auth.Session,
        auth_pb2.LoginResponse.DESCRIPTOR,
        omitted={"access_token": "a secret: travels only in the HttpOnly session cookie, never in a body"},
        rest_only={"subject": "the user name that logged in, from the request"},
    ),
    Mirror(auth.PrincipalBody, auth_pb2.Principal.DESCRIPTOR),
    Mirror(auth.ApiKey, auth_pb2.ApiKey.DESCRIPTOR),
    Mirror(auth.CreatedApiKey, auth_pb2.CreateApiKeyResponse.DESCRIPTOR),
    Mirror(auth.ApiKeyList, auth_pb2.ListApiKeysResponse.DESCRIPTOR),
    Mirror(auth.User, auth_pb2.User.DESCRIPTOR),
    Mirror(auth.UserList, auth_pb2.ListUsersResponse.DESCRIPTOR),
    Mirror(auth.AuditEvent, auth_pb2.AuditEvent.DESCRIPTOR),
    Mirror(auth.AuditEventPage, auth_pb2.ListAuditEventsResponse.DESCRIPTOR),
    Mirror(camera_registry.CameraGroup, cameras_pb2.CameraGroup.DESCRIPTOR),
    Mirror(camera_registry.CameraGroupList, cameras_pb2.ListCameraGroupsResponse.DESCRIPTOR),
    Mirror(camera_registry.ImportRowError, cameras_pb2.ImportRowError.DESCRIPTOR),
    Mirror(camera_registry.ImportReport, cameras_pb2.ImportCamerasResponse.DESCRIPTOR),
    Mirror(camera_registry.CameraCounts, cameras_pb2.CameraCounts.DESCRIPTOR),
    Mirror(camera_registry.GroupCameraCounts, cameras_pb2.GroupCameraCounts.DESCRIPTOR),
    Mirror(camera_registry.EnvironmentCameraCounts, cameras_pb2.EnvironmentCameraCounts.DESCRIPTOR),
    Mirror(camera_registry.CameraSummary, cameras_pb2.CameraSummary.DESCRIPTOR),
    Mirror(cameras.ConnectionTest, catalog_pb2.TestCameraConnectionResponse.DESCRIPTOR),
    Mirror(cameras.CameraHealthCheck, catalog_pb2.CameraHealthCheck.DESCRIPTOR),
    Mirror(cameras.CameraHealth, catalog_pb2.ListCameraHealthResponse.DESCRIPTOR),
    Mirror(jobs.VideoInfo, jobs_pb2.VideoInfo.DESCRIPTOR),
    Mirror(jobs.JobResult, jobs_pb2.JobResult.DESCRIPTOR),
    Mirror(jobs.Job, jobs_pb2.Job.DESCRIPTOR),
    Mirror(jobs.JobPage, jobs_pb2.ListJobsResponse.DESCRIPTOR),
    Mirror(sinks.SinkStatus, sinks_pb2.SinkStatus.DESCRIPTOR),
    Mirror(sinks.Sink, sinks_pb2.Sink.DESCRIPTOR),
    Mirror(sinks.SinkList, sinks_pb2.ListSinksResponse.DESCRIPTOR),
    Mirror(sinks.SinkDelivery, sinks_pb2.SinkDelivery.DESCRIPTOR),
    Mirror(sinks.SinkDeliveryPage, sinks_pb2.ListSinkDeliveriesResponse.DESCRIPTOR),
    # -- request bodies (to_proto.py and the routes copy them into these messages) ---------------
    Mirror(
        tasks.StartTaskBody,
        tasks_pb2.StartTaskRequest.DESCRIPTOR,
        omitted={"idempotency_key": "from the Idempotency-Key header"},
    ),
    Mirror(
        tasks.ControlTaskBody,
        tasks_pb2.ControlTaskRequest.DESCRIPTOR,
        omitted={"task_id": PATH},
        renamed={"global_id": "focus_global_id"},
    ),
    Mirror(catalog.HomographyBody, catalog_pb2.Homography.DESCRIPTOR, omitted={"reprojection_error_m": OUTPUT_ONLY}),
    Mirror(
        catalog.CameraSourceBody,
        catalog_pb2.CameraSource.DESCRIPTOR,
        omitted={"password_set": OUTPUT_ONLY, "masked_url": OUTPUT_ONLY},
    ),
    Mirror(
        catalog.CameraBody,
        catalog_pb2.Camera.DESCRIPTOR,
        omitted={
            "sub_videos": "found on the server's disk (a registered directory); the service ignores them on create",
            "sub_video_frames": "counted from the sub-videos by the service",
        },
    ),
    Mirror(
        catalog.EnvironmentBody,
        catalog_pb2.Environment.DESCRIPTOR,
        omitted={
            "map.image_url": "the floor plan image comes with a registered directory; ignored on create",
            "source_dir": "set by registering a directory (environments:register)",
            "origin": "the service sets it (site for an environment made over REST)",
        },
        renamed={"metres_per_pixel": "map.metres_per_pixel"},
    ),
    Mirror(
        catalog.EnvironmentPatchBody, catalog_pb2.UpdateEnvironmentRequest.DESCRIPTOR, omitted={"environment_id": PATH}
    ),
    Mirror(
        catalog.CameraPatchBody,
        catalog_pb2.UpdateCameraRequest.DESCRIPTOR,
        omitted={"environment_id": PATH, "camera_id": PATH},
    ),
    Mirror(catalog.RegisterEnvironmentBody, catalog_pb2.RegisterEnvironmentFromDirectoryRequest.DESCRIPTOR),
    Mirror(
        analytics.ZoneBody,
        analytics_pb2.Zone.DESCRIPTOR,
        omitted={"environment_id": PATH, "created_at": OUTPUT_ONLY, "updated_at": OUTPUT_ONLY},
    ),
    Mirror(
        analytics.ZonePatchBody,
        analytics_pb2.UpdateZoneRequest.DESCRIPTOR,
        omitted={"environment_id": PATH, "zone_id": PATH},
    ),
    Mirror(auth.LoginBody, auth_pb2.LoginRequest.DESCRIPTOR),
    Mirror(auth.ApiKeyBody, auth_pb2.CreateApiKeyRequest.DESCRIPTOR),
    Mirror(auth.UserBody, auth_pb2.CreateUserRequest.DESCRIPTOR),
    Mirror(
        camera_registry.CameraGroupBody,
        cameras_pb2.CameraGroup.DESCRIPTOR,
        omitted={"environment_id": PATH, "camera_ids": "a camera joins a group through its own group_id"},
    ),
    Mirror(
        camera_registry.CameraGroupPatchBody,
        cameras_pb2.UpdateCameraGroupRequest.DESCRIPTOR,
        omitted={"environment_id": PATH, "group_id": PATH},
    ),
    Mirror(sinks.SinkBody, sinks_pb2.CreateSinkRequest.DESCRIPTOR, omitted={"environment_id": PATH}),
    Mirror(
        sinks.SinkPatchBody,
        sinks_pb2.UpdateSinkRequest.DESCRIPTOR,
        omitted={"sink_id": PATH},
        retyped={"event_types": "a plain list; the proto wraps it (EventTypes) so absent differs from empty"},
    ),
)

# Structs that mirror no message, and why.
REST_ONLY: Mapping[str, str] = {
    "spoton_facade.schemas.tasks.TaskStarted": "the facade's links to follow a started task (status and events URLs)",
    "spoton_facade.problems.Problem": "an RFC 9457 problem: the facade's error body, made from gRPC status codes",
    "spoton_facade.schemas.jobs.JobSourceBody": (
        "the upload form's fields as JSON with an s3:// source instead of the file; gRPC sends them as "
        "UploadJob's JobUploadMetadata (its source field) with no chunk"
    ),
}


@dataclasses.dataclass(frozen=True)
class Shape:
    """A REST field's type reduced to what the proto can say: list or not, and the item's kind."""

    repeated: bool
    # str, int, float, bool, datetime, point, struct or choice (a StrEnum or a Literal of strings).
    kind: str
    struct: type[msgspec.Struct] | None = None
    choices: tuple[str, ...] = ()


def _shape(annotation: typing.Any) -> Shape:
    item, repeated = _strip(annotation), False
    if typing.get_origin(item) is list:
        item, repeated = _strip(typing.get_args(item)[0]), True
    if typing.get_origin(item) is tuple and typing.get_args(item) == (float, float):
        return Shape(repeated, "point")
    if typing.get_origin(item) is typing.Literal and all(isinstance(a, str) for a in typing.get_args(item)):
        return Shape(repeated, "choice", choices=typing.get_args(item))
    if isinstance(item, type) and issubclass(item, enum.StrEnum):
        return Shape(repeated, "choice", choices=tuple(member.value for member in item))
    if isinstance(item, type) and issubclass(item, msgspec.Struct):
        return Shape(repeated, "struct", struct=item)
    if item is dt.datetime:
        return Shape(repeated, "datetime")
    if item in (str, int, float, bool):
        return Shape(repeated, item.__name__)
    raise AssertionError(f"no proto type maps to {annotation!r}")


def _strip(annotation: typing.Any) -> typing.Any:
    """Without Annotated metadata and without ``| None`` (proto presence is not compared)."""
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        assert len(members) == 1, annotation
        return _strip(members[0])
    return annotation


def _kinds(field: FieldDescriptor) -> set[str]:
    """The REST kinds that carry ``field`` as spoton_facade.convert renders it."""
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        return {{_TIMESTAMP: "datetime", _MAP_POINT: "point"}.get(field.message_type.full_name, "struct")}
    if field.type == FieldDescriptor.TYPE_ENUM:
        # Rendered as its lower-case name: a plain string, or a checked choice of the names.
        return {"choice", "str"}
    if field.type == FieldDescriptor.TYPE_STRING:
        return {"str", "choice"}
    if field.type in _INTEGER_TYPES:
        return {"int"}
    if field.type in _FLOAT_TYPES:
        return {"float"}
    if field.type == FieldDescriptor.TYPE_BOOL:
        return {"bool"}
    return {"str"}  # bytes: base64 text


def _field(message: Descriptor, path: str) -> FieldDescriptor | None:
    head, _, rest = path.partition(".")
    field = message.fields_by_name.get(head)
    if field is None or not rest:
        return field
    return _field(field.message_type, rest) if field.type == FieldDescriptor.TYPE_MESSAGE else None


def _proto_paths(message: Descriptor, carried: set[str], prefix: str = "") -> Iterator[str]:
    """Every field path of ``message``, into a message field only where REST flattens it."""
    for field in message.fields:
        path = prefix + field.name
        if field.type == FieldDescriptor.TYPE_MESSAGE and any(c.startswith(path + ".") for c in carried):
            yield from _proto_paths(field.message_type, carried, path + ".")
        else:
            yield path


PAIRS = {(mirror.struct, mirror.message.full_name) for mirror in MIRRORS}


def mismatches(mirror: Mirror) -> list[str]:
    """How ``mirror.struct`` differs from ``mirror.message`` beyond the listed differences."""
    problems: list[str] = []
    rest_fields = {f.name: f.type for f in msgspec.structs.fields(mirror.struct)}
    carried = {mirror.renamed.get(name, name): name for name in rest_fields if name not in mirror.rest_only}
    for path in _proto_paths(mirror.message, set(carried)):
        if path not in carried and path not in mirror.omitted:
            problems.append(f"proto field {path} is missing from REST (add it, or list it as omitted with why)")
    for path, rest_name in carried.items():
        field = _field(mirror.message, path)
        if field is None:
            problems.append(f"REST field {rest_name} has no proto field {path} (rename it, or list it as REST-only)")
        elif rest_name not in mirror.retyped:
            problems += [f"{rest_name}: {p}" for p in _type_mismatches(field, _shape(rest_fields[rest_name]))]
    for path in mirror.omitted:
        if path in carried or _field(mirror.message, path) is None:
            problems.append(f"listed as omitted, but {path} is carried or not a proto field")
    problems += [f"listed as REST-only, but {n} is not a REST field" for n in mirror.rest_only if n not in rest_fields]
    problems += [f"listed as retyped, but {n} is not a REST field" for n in mirror.retyped if n not in rest_fields]
    return problems


def _type_mismatches(field: FieldDescriptor, shape: Shape) -> list[str]:
    problems: list[str] = []
    if field.is_repeated != shape.repeated:
        problems.append(f"repeated in the proto is {field.is_repeated}, a list in REST is {shape.repeated}")
    if shape.kind not in _kinds(field):
        problems.append(f"REST {shape.kind} cannot carry proto type {field.type} ({_kinds(field)})")
    if shape.struct is not None and field.message_type is not None:
        if (shape.struct, field.message_type.full_name) not in PAIRS:
            problems.append(f"{shape.struct.__name__} is not listed as mirroring {field.message_type.full_name}")
    if shape.choices and field.enum_type is not None:
        unknown = set(shape.choices) - set(enum_names(field.enum_type))
        if unknown:
            problems.append(f"choices {sorted(unknown)} are not values of {field.enum_type.full_name}")
    return problems


def _facade_structs() -> set[str]:
    """The structs each spoton_facade module defines (read from the modules, not from
    ``Struct.__subclasses__()``, which also holds Litestar's generated signature models)."""
    found: set[str] = set()
    for info in pkgutil.walk_packages(spoton_facade.__path__, "spoton_facade."):
        module = importlib.import_module(info.name)
        found |= {
            f"{info.name}.{value.__qualname__}"
            for value in vars(module).values()
            if isinstance(value, type) and issubclass(value, msgspec.Struct) and value.__module__ == info.name
        }
    return found


@pytest.mark.parametrize("mirror", MIRRORS, ids=lambda m: m.name)
def test_struct_mirrors_its_message(mirror: Mirror) -> None:
    assert mismatches(mirror) == []


def test_every_facade_struct_mirrors_a_message_or_says_why_not() -> None:
    paired = {f"{m.struct.__module__}.{m.struct.__qualname__}" for m in MIRRORS}
    structs = _facade_structs()
    assert structs - paired - set(REST_ONLY) == set()
    # A listed REST-only struct that no longer exists (or now mirrors a message) is a stale entry.
    assert set(REST_ONLY) <= structs - paired


def test_a_proto_field_missing_from_rest_is_reported() -> None:
    # The checker itself: Homography's answer field, as the body (which leaves it out) would miss it.
    unlisted = Mirror(catalog.HomographyBody, catalog_pb2.Homography.DESCRIPTOR)
    assert mismatches(unlisted) == [
        "proto field reprojection_error_m is missing from REST (add it, or list it as omitted with why)"
    ]


def test_a_type_that_does_not_map_is_reported() -> None:
    # FloorMap against the wrong message: a scalar paired with a list, and a name the proto lacks.
    wrong = Mirror(catalog.FloorMap, catalog_pb2.Homography.DESCRIPTOR, renamed={"metres_per_pixel": "matrix"})
    problems = mismatches(wrong)
    assert "metres_per_pixel: repeated in the proto is True, a list in REST is False" in problems
    assert any(p.startswith("REST field image_url has no proto field") for p in problems)
