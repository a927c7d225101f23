"""The baseline's conversions (no ``trackers`` needed) and that its files, the oracle's and
the service's exports all read back alike."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from accuracy_lib.motfile import (
    FrameDetections,
    MotRow,
    camera_ids_in,
    read_detections,
    write_rows,
    xywh_to_xyxy,
    xyxy_to_xywh,
)
from baseline_bytetrack import GLOBAL_ID_STRIDE, frame_sequence, globalise, tracked_rows

from spoton_client.scoring import read_mot
from spoton_inference.pipeline.exports import ExportWriter


def test_the_service_detections_export_reads_back(tmp_path: Path):
    writer = ExportWriter(tmp_path, ["c01", "c02"], fps=10)
    writer.add_detections("c01", 0, np.array([[10, 20, 50, 120], [60, 20, 90, 100]], np.float32), np.array([0.9, 0.2]))
    writer.add_detections("c01", 3, np.array([[12, 20, 52, 121]], np.float32), np.array([0.5]))
    writer.close()
    assert camera_ids_in(tmp_path) == ["c01", "c02"]
    dets = read_detections(tmp_path / "c01.detections.txt")
    assert sorted(dets) == [1, 4]
    np.testing.assert_allclose(dets[1].boxes, [[10, 20, 40, 100], [60, 20, 30, 80]])
    np.testing.assert_allclose(dets[1].scores, [0.9, 0.2])
    assert read_detections(tmp_path / "c02.detections.txt") == {}


def test_frame_sequence_fills_the_gaps():
    one = FrameDetections(np.array([[0.0, 0, 1, 1]]), np.array([0.5]))
    frames = list(frame_sequence({2: one, 4: one}))
    assert [f for f, _ in frames] == [1, 2, 3, 4]
    assert [len(d.scores) for _, d in frames] == [0, 1, 0, 1]


def test_tracked_rows_drop_untracked_and_count_from_one():
    xyxy = np.array([[10, 20, 50, 120], [60, 20, 90, 100]], float)
    rows = tracked_rows(3, xyxy, np.array([0.9, 0.3]), np.array([0, -1]))
    assert rows == [MotRow(3, 1, (10.0, 20.0, 40.0, 100.0), 0.9)]


def test_global_ids_are_unique_per_camera_and_round_trip(tmp_path: Path):
    rows = [MotRow(2, 1, (10.0, 20.0, 40.0, 100.0), 0.9), MotRow(1, 2, (1.5, 2.25, 3.0, 4.0), 0.75)]
    write_rows(tmp_path / "c02.global.txt", globalise(rows, 2))
    read = read_mot(tmp_path / "c02.global.txt")
    assert read[1][0].tolist() == [2 + 2 * GLOBAL_ID_STRIDE]
    assert read[2][0].tolist() == [1 + 2 * GLOBAL_ID_STRIDE]
    np.testing.assert_allclose(read[1][1], [[1.5, 2.25, 3.0, 4.0]])
    # Same line layout as the service's exports: frame,id,x,y,w,h,conf,-1,-1,-1.
    assert (tmp_path / "c02.global.txt").read_text().splitlines()[0] == "1,200002,1.50,2.25,3.00,4.00,0.7500,-1,-1,-1"


def test_box_conversions_are_inverse():
    boxes = np.array([[1.0, 2.0, 3.0, 4.0]])
    np.testing.assert_allclose(xywh_to_xyxy(boxes), [[1, 2, 4, 6]])
    np.testing.assert_allclose(xyxy_to_xywh(xywh_to_xyxy(boxes)), boxes)
