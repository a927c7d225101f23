"""The jobs' REST shapes follow spoton.v1, and SSE sends the same body as GET."""

from __future__ import annotations

import json

from google.protobuf.timestamp_pb2 import Timestamp

from spoton.v1 import jobs_pb2
from spoton_facade.convert import enum_names
from spoton_facade.routes.jobs import JobBlocks
from spoton_facade.schemas.base import from_proto
from spoton_facade.schemas.jobs import Job, JobResultKindName, JobStateName


def test_enums_match_the_proto() -> None:
    assert [s.value for s in JobStateName] == enum_names(jobs_pb2.JobState.DESCRIPTOR)
    assert [k.value for k in JobResultKindName] == enum_names(jobs_pb2.JobResultKind.DESCRIPTOR)


def _job(**fields) -> jobs_pb2.Job:
    return jobs_pb2.Job(
        job_id="j1",
        name="Hall",
        state=jobs_pb2.JOB_STATE_RUNNING,
        revision=7,
        created_at=Timestamp(seconds=60),
        **fields,
    )


def test_unset_optional_fields_are_null_and_set_ones_are_numbers() -> None:
    queued = from_proto(_job(), Job)
    assert queued.state is JobStateName.RUNNING and queued.fps_override is None
    assert queued.eta_seconds == 0  # not yet known: 0, as once the job is over
    assert queued.started_at is None and queued.created_at is not None
    running = from_proto(_job(eta_seconds=12.5, progress=0.25), Job)
    assert running.eta_seconds == 12.5 and running.progress == 0.25


def test_each_step_has_its_own_figures() -> None:
    figures = {
        "frames_per_second": 25.0,
        "frames_processed": 100,
        "processing_seconds": 4.0,
        "rendering_frames_per_second": 100.0,
        "frames_rendered": 60,
        "rendering_seconds": 0.6,
        "elapsed_seconds": 5.5,
    }
    body = json.loads(JobBlocks().block(_job(**figures)).decode().split("data: ")[1])
    assert {name: body[name] for name in figures} == figures


def test_an_sse_block_carries_the_revision_and_the_get_body() -> None:
    block = JobBlocks().block(_job(eta_seconds=3.0)).decode()
    head, data = block.split("data: ")
    assert head == "id: 7\nevent: job_update\n" and block.endswith("\n\n")
    body = json.loads(data)
    assert body["job_id"] == "j1" and body["state"] == "running" and body["eta_seconds"] == 3.0
    assert body["detection_threshold"] is None and body["created_at"].startswith("1970-01-01T00:01:00")


async def test_the_job_routes_are_documented_with_typed_bodies(client) -> None:
    paths = (await client.get("/schema/openapi.json")).json()["paths"]
    base = "/api/v1/jobs"
    assert {
        (base, "post"),
        (base, "get"),
        (f"{base}/{{job_id}}", "get"),
        (f"{base}/{{job_id}}", "delete"),
        (f"{base}/{{job_id}}/cancel", "post"),
        (f"{base}/{{job_id}}/video", "get"),
        (f"{base}/{{job_id}}/events", "get"),
        (f"{base}/{{job_id}}/tracks", "get"),
    } <= {(path, method) for path, operations in paths.items() for method in operations}
    upload = paths[base]["post"]
    form = upload["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert form["required"] == ["file"] and form["properties"]["file"]["format"] == "binary"
    assert {"413", "415"} <= set(upload["responses"])
    for path, method, status, name in [
        (base, "post", "201", "Job"),
        (base, "get", "200", "JobPage"),
        (f"{base}/{{job_id}}", "get", "200", "Job"),
        (f"{base}/{{job_id}}/cancel", "post", "200", "Job"),
    ]:
        content = paths[path][method]["responses"][status]["content"]["application/json"]
        assert content["schema"]["$ref"] == f"#/components/schemas/{name}", path
