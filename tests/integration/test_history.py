"""A real task over a generated scene fills the history: identities with first/last seen equal to
their track points, camera and zone events in the events table, zone events on the task's stream
and in its events.json export."""

from __future__ import annotations

import dataclasses
import json

import pytest

from spoton_inference.domain.events import StatusUpdate, ZoneEvent
from spoton_inference.scenes.config import demo_config
from spoton_inference.scenes.generate import generate

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]
WEST = [(0.0, 0.0), (7.0, 0.0), (7.0, 9.0), (0.0, 9.0)]  # the west half of the demo hall


async def test_a_task_records_identities_and_events(live_service, make_data_dir):
    app = live_service.app
    config = dataclasses.replace(demo_config(seed=3), frames_per_batch=30, n_batches=1, n_people=4)
    env = await app.catalog.register_directory(str(generate(config, make_data_dir("history") / "hall")))
    await app.analytics.create_zone(env.environment_id, zone_id="west", name="West", polygon=WEST)

    record = await app.tasks.start(env.environment_id, [])
    streamed = []
    async for event in app.tasks.watch(record.task_id, 0):
        if isinstance(event.payload, ZoneEvent):
            streamed.append(event.payload)
        if isinstance(event.payload, StatusUpdate) and event.payload.state.is_final:
            assert event.payload.state.value == "completed", event.payload.error
    await app.history.flush()

    async with app.db.pool.acquire() as conn:
        spans = await conn.fetch(
            "SELECT global_id, min(time) AS first, max(time) AS last FROM track_points WHERE task_id = $1 "
            "GROUP BY global_id ORDER BY global_id",
            record.task_id,
        )
        identities = await conn.fetch(
            "SELECT global_id, first_seen, last_seen FROM identities WHERE task_id = $1 ORDER BY global_id",
            record.task_id,
        )
        events = await conn.fetch(
            "SELECT kind, global_id, global_frame_index, payload->>'zone_id' AS zone FROM events "
            "WHERE task_id = $1 ORDER BY global_frame_index, kind",
            record.task_id,
        )
    assert spans, "the scene's people were not tracked"
    assert [tuple(r) for r in identities] == [tuple(r) for r in spans]

    kinds = {e["kind"] for e in events}
    assert {"appear", "leave", "zone_enter", "zone_exit"} <= kinds
    assert {e["global_id"] for e in events if e["kind"] == "appear"} == {r["global_id"] for r in spans}
    zone_rows = [(e["kind"], e["global_id"], e["global_frame_index"]) for e in events if e["zone"] == "west"]
    # Every stay in the zone is closed, and the stream announced exactly what was stored.
    for gid in {g for _, g, _ in zone_rows}:
        mine = [k for k, g, _ in zone_rows if g == gid]
        assert mine.count("zone_enter") == mine.count("zone_exit") >= 1
    announced = sorted(("zone_" + z.kind, z.global_id, z.global_frame_index) for z in streamed)
    assert announced == sorted(zone_rows)
    # The export a job user downloads holds the same zone events (its frames count from 1).
    exported = json.loads((await app.tasks.export_path(record.task_id, "events.json")).read_text())["events"]
    zone_exports = [e for e in exported if e["type"].startswith("zone_")]
    assert sorted((e["type"], e["global_id"], e["frame"] - 1) for e in zone_exports) == sorted(zone_rows)
    assert all(e["zone_id"] == "west" and e["zone_name"] == "West" and len(e["map_xy"]) == 2 for e in zone_exports)
