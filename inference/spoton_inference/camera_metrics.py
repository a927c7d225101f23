"""Per-camera Prometheus metrics of live cameras, read at scrape time from their pulls.

A live task pulls each of its cameras (pipeline/live_pull.py); while it runs, the pull's
counters are listed by (environment id, camera id) in the app's ``live_pulls``. Nothing on the
frame path touches a metric: this collector reads those plain counters when Prometheus
scrapes, as metrics.py's collector does. A camera has series only while a live task pulls it;
a new task starts its pull's counters at 0 again, which ``rate()`` reads as a counter reset.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from spoton_inference.pipeline.live_pull import LivePull

CameraKey = tuple[str, str]  # (environment id, camera id)
Pulls = Callable[[], Mapping[CameraKey, LivePull]]
LABELS = ["environment_id", "camera_id"]


class CameraCollector(Collector):
    """``spoton_camera_*``: connected, frames, drops, reconnects, connection failures, last frame time."""

    def __init__(self, pulls: Pulls) -> None:
        self._pulls = pulls

    def collect(self) -> Iterator[Metric]:
        connected = GaugeMetricFamily(
            "spoton_camera_connected", "1 while a live camera's stream is open, 0 while it reconnects.", labels=LABELS
        )
        frames = CounterMetricFamily("spoton_camera_frames", "Frames read from a live camera.", labels=LABELS)
        dropped = CounterMetricFamily(
            "spoton_camera_frames_dropped",
            "Frames of a live camera dropped, oldest first, because tracking fell behind.",
            labels=LABELS,
        )
        reconnects = CounterMetricFamily(
            "spoton_camera_reconnects", "Successful reconnections to a live camera after its first.", labels=LABELS
        )
        failures = CounterMetricFamily(
            "spoton_camera_connection_failures",
            "Connections to a live camera that failed to open, dropped or ended (each retried with back-off).",
            labels=LABELS,
        )
        last_frame = GaugeMetricFamily(
            "spoton_camera_last_frame_timestamp_seconds",
            "Unix time of the newest frame read from a live camera (age: time() minus it).",
            labels=LABELS,
        )
        # The pulls are updated on other threads; a tuple copy taken in one step under the GIL
        # is read here, and each field is a plain int/float read whole.
        for (environment_id, camera_id), pull in tuple(self._pulls().items()):
            state, labels = pull.state, [environment_id, camera_id]
            connected.add_metric(labels, int(state.connected))
            frames.add_metric(labels, state.frames)
            dropped.add_metric(labels, state.frames_dropped)
            reconnects.add_metric(labels, state.reconnects)
            failures.add_metric(labels, state.failed_attempts)
            if state.last_frame_at is not None:
                last_frame.add_metric(labels, state.last_frame_at)
        yield from (connected, frames, dropped, reconnects, failures, last_frame)
