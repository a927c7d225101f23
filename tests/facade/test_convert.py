"""Proto → JSON translation shared by REST and SSE."""

from __future__ import annotations

import datetime as dt

from spoton.v1 import catalog_pb2, common_pb2, tasks_pb2
from spoton_facade.convert import enum_name, enum_names, enum_number, message_to_json
from spoton_facade.schemas.base import from_proto
from spoton_facade.schemas.catalog import Environment, EnvironmentOriginName
from spoton_facade.schemas.tasks import Task, TaskActionName, TaskStateName


def test_task_state_names_follow_the_proto() -> None:
    assert [state.value for state in TaskStateName] == enum_names(tasks_pb2.TaskState.DESCRIPTOR)


def test_task_action_names_follow_the_proto() -> None:
    assert ["unspecified", *(action.value for action in TaskActionName)] == enum_names(tasks_pb2.TaskAction.DESCRIPTOR)


def test_enum_round_trip() -> None:
    descriptor = tasks_pb2.TaskState.DESCRIPTOR
    assert enum_name(descriptor, tasks_pb2.TASK_STATE_CANCELLED) == "cancelled"
    assert enum_number(descriptor, "cancelled") == tasks_pb2.TASK_STATE_CANCELLED
    assert enum_name(descriptor, 99) == "99"  # from a newer service


def test_task() -> None:
    created = dt.datetime(2025, 5, 6, 7, 8, 9, tzinfo=dt.UTC)
    proto = tasks_pb2.Task(
        task_id="t1",
        environment_id="e1",
        camera_ids=["c1", "c2"],
        state=tasks_pb2.TASK_STATE_PROCESSING,
        progress=0.25,
        step="batch 1/4",
        frames_processed=120,
        total_frames=480,
        last_sequence=2**33,
    )
    proto.created_at.FromDatetime(created)
    task = from_proto(proto, Task)
    assert task.state is TaskStateName.PROCESSING
    assert task.created_at == created
    assert task.updated_at is None
    assert task.progress == 0.25
    assert task.last_sequence == 2**33


def test_environment_points_are_pairs() -> None:
    camera = catalog_pb2.Camera(camera_id="c1", fps=15.0, width=640, height=480)
    camera.homography.image_points.add(x=1, y=2)
    camera.homography.map_points.add(x=3.5, y=4.5)
    camera.homography.matrix.extend([1, 0, 0, 0, 1, 0, 0, 0, 1])
    bare = catalog_pb2.Camera(camera_id="c2")
    env = from_proto(catalog_pb2.Environment(environment_id="e1", cameras=[camera, bare]), Environment)
    assert env.map is None
    assert env.cameras[0].homography is not None
    assert env.cameras[0].homography.image_points == [(1.0, 2.0)]
    assert env.cameras[0].homography.map_points == [(3.5, 4.5)]
    assert env.cameras[1].homography is None


def test_unset_oneof_members_are_left_out() -> None:
    event = tasks_pb2.TaskEvent(sequence=1, status_update=tasks_pb2.StatusUpdate())
    rendered = message_to_json(event)
    assert "status_update" in rendered
    assert "tracking_update" not in rendered
    assert message_to_json(common_pb2.Track())["map_coords"] is None


def test_environment_origins_match_the_proto() -> None:
    assert [o.value for o in EnvironmentOriginName] == enum_names(catalog_pb2.EnvironmentOrigin.DESCRIPTOR)
    job = catalog_pb2.Environment(environment_id="job-1", origin=catalog_pb2.ENVIRONMENT_ORIGIN_JOB)
    assert from_proto(job, Environment).origin is EnvironmentOriginName.JOB
