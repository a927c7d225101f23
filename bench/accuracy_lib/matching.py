"""One-to-one box matching within a frame, the way py-motmetrics matches for MOTA/IDF1:
Hungarian on 1 - IoU over the pairs with IoU >= the threshold. The client's scoring owns the
implementation (``spoton eval`` uses it too); the bench re-exports it."""

from __future__ import annotations

from spoton_client.scoring import IOU_MATCH, iou_xywh, match_boxes

__all__ = ["IOU_MATCH", "iou_xywh", "match_boxes"]
