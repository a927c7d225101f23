"""Camera registry routes over the real inference service: groups, the new camera fields with
credentials masked, import (raw and multipart, 422 with per-row errors), export and summary."""

from __future__ import annotations

import csv
import io
import logging

import httpx

Client = httpx.AsyncClient
BASE = "/api/v1/environments"
SECRET = "rest-Pa55word-77"


async def test_groups_and_camera_fields_with_the_password_never_answered(
    live_client: Client, caplog, expect_problem
) -> None:
    caplog.set_level(logging.DEBUG)
    assert (await live_client.post(BASE, json={"environment_id": "rest-reg"})).status_code == 201
    group = await live_client.post(f"{BASE}/rest-reg/camera-groups", json={"group_id": "hall", "name": "Hall"})
    assert group.status_code == 201 and group.json()["camera_ids"] == []
    assert expect_problem(await live_client.post(f"{BASE}/rest-reg/camera-groups", json={"group_id": "hall"}), 409)

    body = {
        "camera_id": "cam-1",
        "fps": 10,
        "group_id": "hall",
        "source": {"kind": "rtsp", "url": f"rtsp://admin:{SECRET}@192.168.0.9/stream1"},
        "detection_threshold": 0.45,
        "location": "Hall, by the stairs",
    }
    created = await live_client.post(f"{BASE}/rest-reg/cameras", json=body)
    assert created.status_code == 201, created.text
    assert SECRET not in created.text
    camera = created.json()
    assert camera["source"] == {
        "kind": "rtsp",
        "url": "rtsp://192.168.0.9/stream1",
        "username": "admin",
        "password_set": True,
        "masked_url": "rtsp://admin:****@192.168.0.9/stream1",
    }
    assert (camera["group_id"], camera["detection_threshold"], camera["location"], camera["enabled"]) == (
        "hall",
        0.45,
        "Hall, by the stairs",
        True,
    )
    # Another path on the same host keeps the stored password; another host drops it (the
    # password must never go to a host it was not given for).
    patched = await live_client.patch(
        f"{BASE}/rest-reg/cameras/cam-1",
        json={"enabled": False, "source": {"url": "rtsp://192.168.0.9/stream2", "username": "admin"}},
    )
    assert patched.status_code == 200 and patched.json()["source"]["password_set"] and not patched.json()["enabled"]
    moved = await live_client.patch(
        f"{BASE}/rest-reg/cameras/cam-1", json={"source": {"url": "rtsp://192.168.0.10/stream1", "username": "admin"}}
    )
    assert moved.status_code == 200 and not moved.json()["source"]["password_set"]
    listed = await live_client.get(f"{BASE}/rest-reg/cameras", params={"group_id": "hall", "enabled": "false"})
    assert [c["camera_id"] for c in listed.json()["cameras"]] == ["cam-1"]
    assert not (await live_client.get(f"{BASE}/rest-reg/cameras", params={"enabled": "true"})).json()["cameras"]

    got = (await live_client.get(f"{BASE}/rest-reg/camera-groups/hall")).json()
    assert got["camera_ids"] == ["cam-1"]
    renamed = await live_client.patch(f"{BASE}/rest-reg/camera-groups/hall", json={"description": "Ground"})
    assert renamed.json()["name"] == "Hall" and renamed.json()["description"] == "Ground"
    assert [g["group_id"] for g in (await live_client.get(f"{BASE}/rest-reg/camera-groups")).json()["groups"]] == [
        "hall"
    ]
    assert (await live_client.delete(f"{BASE}/rest-reg/camera-groups/hall")).status_code == 204
    expect_problem(await live_client.get(f"{BASE}/rest-reg/camera-groups/hall"), 404, "NOT_FOUND")
    assert (await live_client.get(f"{BASE}/rest-reg/cameras/cam-1")).json()["group_id"] == ""
    assert not [r for r in caplog.records if SECRET in r.getMessage() or SECRET in str(r.args)]


async def test_import_with_bad_rows_is_422_and_applies_nothing(live_client: Client, caplog, expect_problem) -> None:
    caplog.set_level(logging.DEBUG)
    await live_client.post(BASE, json={"environment_id": "rest-import"})
    content = (
        f"camera_id,fps,source_kind,source_url,enabled\nok,12,rtsp,rtsp://u:{SECRET}@cam/a,true\nbroken,0,,,perhaps\n"
    )
    response = await live_client.post(
        f"{BASE}/rest-import/cameras/import", content=content, headers={"content-type": "text/csv"}
    )
    problem = expect_problem(response, 422)
    assert "nothing was imported" in problem["detail"]
    assert [(e["row"], e["camera_id"], e["field"]) for e in problem["errors"]] == [
        (2, "broken", "enabled"),
        (2, "broken", "fps"),
    ]
    assert not (await live_client.get(f"{BASE}/rest-import/cameras")).json()["cameras"]

    good = content.split("broken")[0]
    dry = await live_client.post(
        f"{BASE}/rest-import/cameras/import",
        params={"format": "csv", "dry_run": "true"},
        files={"file": ("cams.csv", good.encode(), "application/octet-stream")},
    )
    assert dry.status_code == 200, dry.text
    assert dry.json() == {"applied": False, "errors": [], "created_camera_ids": ["ok"], "updated_camera_ids": []}
    done = await live_client.post(
        f"{BASE}/rest-import/cameras/import", files={"file": ("cams.csv", good.encode(), "text/csv")}
    )
    assert done.status_code == 200 and done.json()["applied"]
    camera = (await live_client.get(f"{BASE}/rest-import/cameras/ok")).json()
    assert camera["source"]["password_set"] and SECRET not in str(camera)

    unknown = await live_client.post(f"{BASE}/rest-import/cameras/import", content=b"camera_id\nx\n")
    assert expect_problem(unknown, 415)
    assert not [r for r in caplog.records if SECRET in r.getMessage() or SECRET in str(r.args)]


async def test_export_is_an_attachment_without_passwords_and_the_summary_counts(
    live_client: Client, expect_problem
) -> None:
    await live_client.post(BASE, json={"environment_id": "rest-export"})
    source = {"kind": "http", "url": "https://cam.example/mjpeg", "username": "viewer", "password": SECRET}
    await live_client.post(f"{BASE}/rest-export/cameras", json={"camera_id": "web", "fps": 5, "source": source})

    exported = await live_client.get(f"{BASE}/rest-export/cameras/export")
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    assert exported.headers["content-disposition"] == 'attachment; filename="rest-export-cameras.csv"'
    assert SECRET not in exported.text
    [row] = list(csv.DictReader(io.StringIO(exported.text)))
    assert (row["camera_id"], row["source_kind"], row["password_set"]) == ("web", "http", "true")
    as_json = await live_client.get(f"{BASE}/rest-export/cameras/export", params={"format": "json"})
    assert as_json.json()["cameras"][0]["source_username"] == "viewer" and SECRET not in as_json.text
    back = await live_client.post(
        f"{BASE}/rest-export/cameras/import", params={"format": "json"}, content=as_json.content
    )
    assert back.status_code == 200 and back.json()["updated_camera_ids"] == ["web"]
    assert expect_problem(await live_client.get(f"{BASE}/nowhere/cameras/export"), 404)

    summary = (await live_client.get("/api/v1/cameras/summary")).json()
    [env] = [e for e in summary["environments"] if e["environment_id"] == "rest-export"]
    assert (env["counts"]["total"], env["counts"]["source_http"], env["counts"]["unknown"]) == (1, 1, 1)
    assert summary["counts"]["total"] >= 1
