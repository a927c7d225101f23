"""The Prometheus endpoint serves the writer's and the live streams' counters, as scraped."""

import httpx
from prometheus_client.parser import text_string_to_metric_families

from spoton_inference.embedded.ports import LOOPBACK, pick_free_port
from spoton_inference.metrics import start_metrics_server
from spoton_inference.pipeline.live import LiveStats
from spoton_inference.storage.journal import Journal
from spoton_inference.storage.track_writer import TrackPointWriter


async def _never_called(batch_id, rows):
    raise AssertionError("the writer is not started here")


async def test_metrics_are_scraped_with_their_current_values(tmp_path):
    writer = TrackPointWriter(_never_called, Journal(tmp_path / "j.journal", 1 << 20), batch_size=10)
    writer.counters.written, writer.counters.replayed, writer.counters.lost = 120, 20, 3
    writer.add([(i,) for i in range(7)])
    live = LiveStats(open_streams=2, frames_received=50, frames_answered=45, frames_dropped=5)
    port = pick_free_port()
    server = start_metrics_server(LOOPBACK, port, writer, live)
    try:
        async with httpx.AsyncClient() as http:
            reply = await http.get(f"http://{LOOPBACK}:{port}/metrics")
            writer.counters.written += 1  # read at scrape time
            again = await http.get(f"http://{LOOPBACK}:{port}/metrics")
    finally:
        server.shutdown()
        server.server_close()
    assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/plain")
    samples = {s.name: s.value for f in text_string_to_metric_families(reply.text) for s in f.samples}
    assert samples["spoton_track_points_written_total"] == 120
    assert samples["spoton_track_points_replayed_total"] == 20
    assert samples["spoton_track_points_lost_total"] == 3
    assert samples["spoton_track_points_duplicates_skipped_total"] == 0
    assert samples["spoton_track_points_buffered"] == 7
    assert samples["spoton_track_points_journaled"] == 0
    assert samples["spoton_postgres_writable"] == 1
    assert samples["spoton_live_streams_open"] == 2
    assert samples["spoton_live_frames_dropped_total"] == 5
    assert "process_resident_memory_bytes" in samples
    assert "spoton_track_points_written_total 121.0" in again.text


async def test_component_restarts_are_a_counter_per_component(tmp_path):
    from spoton_inference.services.health import SupervisedComponent

    writer = TrackPointWriter(_never_called, Journal(tmp_path / "j.journal", 1 << 20), batch_size=10)
    supervised = [SupervisedComponent("triton", "healthy", 0), SupervisedComponent("postgres", "healthy", 0)]
    port = pick_free_port()
    server = start_metrics_server(LOOPBACK, port, writer, LiveStats(), lambda: supervised)
    try:
        async with httpx.AsyncClient() as http:
            before = await http.get(f"http://{LOOPBACK}:{port}/metrics")
            supervised[1] = SupervisedComponent("postgres", "healthy", 2, "was killed by SIGKILL")
            after = await http.get(f"http://{LOOPBACK}:{port}/metrics")
    finally:
        server.shutdown()
        server.server_close()

    def restarts(reply: httpx.Response) -> dict[str, float]:
        families = text_string_to_metric_families(reply.text)
        return {
            s.labels["component"]: s.value
            for f in families
            for s in f.samples
            if s.name == "spoton_component_restarts_total"
        }

    assert restarts(before) == {"triton": 0, "postgres": 0}
    assert restarts(after) == {"triton": 0, "postgres": 2}
