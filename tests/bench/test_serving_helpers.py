"""The serving benchmark's own arithmetic and parsing: percentiles and ratios, ghz's and
perf_analyzer's reports, SSE blocks, exported detections, and the targets' verdicts."""

from __future__ import annotations

import math

import pytest
from serving_lib.ghz import GhzCall, summary_from_report
from serving_lib.perf_analyzer import summary_from_csv
from serving_lib.report import Row, table, write_json
from serving_lib.sse import SseEvent, SseParser, emitted_at
from serving_lib.stats import percentile, ratio, summarize
from serving_lib.targets import detect_target, health_target, sse_target, task_target
from serving_lib.task import exported_detections


def test_percentile_interpolates_between_ranks_as_numpy_does():
    values = [5.0, 1.0, 4.0, 2.0, 3.0]
    assert percentile(values, 50) == 3.0
    assert percentile(values, 99) == pytest.approx(4.96)
    assert math.isnan(percentile([], 50))


def test_summary_counts_answered_calls_over_the_wall_time():
    s = summarize([10.0, 20.0, 30.0], wall_s=1.5, errors=2)
    assert (s.count, s.errors, s.rps, s.p50_ms) == (3, 2, 2.0, 20.0)


def test_ratio_without_a_ceiling_is_not_a_number_rather_than_a_crash():
    assert ratio(45.0, 50.0) == 0.9
    assert math.isnan(ratio(45.0, 0.0))
    assert math.isnan(ratio(math.nan, 50.0))


def test_ghz_report_counts_failed_calls_as_errors_and_not_as_throughput():
    report = {
        "total": 2_000_000_000,  # ns
        "statusCodeDistribution": {"OK": 90, "Unavailable": 10},
        "latencyDistribution": [{"percentage": 50, "latency": 21_700_000}, {"percentage": 99, "latency": 40_000_000}],
    }
    s = summary_from_report(report)
    assert (s.count, s.errors, s.rps, s.p50_ms, s.p99_ms) == (90, 10, 45.0, 21.7, 40.0)


def test_ghz_call_reads_the_schema_from_the_protoset_or_reflection_and_carries_the_key(tmp_path):
    request = tmp_path / "detect.bin"
    by_reflection = GhzCall("spoton.v1.InferenceService/Detect", 4, 300, "k1", data_file=request, protoset=None)
    argv = by_reflection.argv("127.0.0.1:1")
    assert "--protoset" not in argv and argv[argv.index("--binary-file") + 1] == str(request)
    assert argv[argv.index("--metadata") + 1] == '{"authorization": "Bearer k1"}'
    assert argv[-1] == "127.0.0.1:1" and argv[argv.index("-c") + 1] == "4" and argv[argv.index("-n") + 1] == "300"
    assert "--protoset" in GhzCall("spoton.v1.SystemService/GetHealth", 50, 20000, "k1").argv("127.0.0.1:1")


def test_perf_analyzer_csv_latencies_are_microseconds():
    text = (
        "Concurrency,Inferences/Second,Client Send,p50 latency,p90 latency,p99 latency\n4,105.9,12,37000,40000,52000\n"
    )
    s = summary_from_csv(text)
    assert (s.rps, s.p50_ms, s.p99_ms) == (105.9, 37.0, 52.0)


def test_sse_parser_joins_blocks_split_across_chunks_and_skips_heartbeats_and_problems():
    parser = SseParser()
    data = '{"sequence": 7, "emitted_at": "2026-12-07T13:00:00.250000Z"}'
    assert parser.feed(b": heartbeat\n\nid: 7\nevent: tracking_") == []
    (event,) = parser.feed(f"update\ndata: {data}\n\n".encode())
    assert event == SseEvent(7, "tracking_update", data)
    assert emitted_at(event) == pytest.approx(1796648400.25)
    assert parser.feed(b'event: problem\ndata: {"status": 503}\n\nid: 8\n\n') == []


def test_exported_detections_become_corner_boxes_with_scores_by_camera_and_zero_based_frame(tmp_path):
    (tmp_path / "c01.detections.txt").write_text("1,-1,10,20,30,40,0.9,-1,-1,-1\n3,-1,0,0,5,5,0.2,-1,-1,-1\n")
    detections = exported_detections(tmp_path)
    assert sorted(detections) == [("c01", 0), ("c01", 2)]
    boxes, scores = detections[("c01", 0)]
    assert boxes.tolist() == [[10.0, 20.0, 40.0, 60.0]] and scores.tolist() == [pytest.approx(0.9)]


def test_targets_follow_the_issue():
    assert detect_target(0.91, 2.9).ok and not detect_target(0.91, 3.5).ok and not detect_target(0.8, 1.0).ok
    assert task_target(0.85).ok and not task_target(math.nan).ok
    assert sse_target(1.0, 0, 150.0).ok and not sse_target(0.995, 0, 10.0).ok and not sse_target(1.0, 1, 10.0).ok
    assert health_target(5200.0, 12.0, 0).ok and not health_target(5200.0, 12.0, 3).ok
    assert detect_target(0.5, 1.0).verdict == "MISS"


def test_table_aligns_columns_and_json_writes_missing_figures_as_null(tmp_path):
    text = table([Row("a", "1 rps", "2 rps", 0.5, task_target(0.5)), Row("longer figure", "x", "", math.nan, None)])
    lines = text.splitlines()
    assert lines[0].split() == ["figure", "SpotOn", "ceiling", "ratio", "target"]
    assert "MISS (>= 0.85x replay)" in lines[2] and "n/a" in lines[3]
    write_json(tmp_path / "serving.json", {"ratio": math.nan, "rows": [1.0, math.nan]})
    assert (tmp_path / "serving.json").read_text().split() == [
        "{",
        '"ratio":',
        "null,",
        '"rows":',
        "[",
        "1.0,",
        "null",
        "]",
        "}",
    ]
