"""Prometheus metrics of the inference service: ``http://<grpc_host>:<metrics_port>/metrics``.

Values are read from the live counters at scrape time (the track-point writer's and the
StreamFrames streams'), so nothing on the frame path updates a metric. The HTTP server is
prometheus_client's, on a daemon thread; reading plain ints from there is safe.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence
from wsgiref.simple_server import WSGIServer

from prometheus_client import GC_COLLECTOR, PLATFORM_COLLECTOR, PROCESS_COLLECTOR, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from spoton_inference.camera_metrics import CameraCollector, Pulls
from spoton_inference.pipeline.live import LiveStats
from spoton_inference.pipeline.triton_pool import EndpointStats
from spoton_inference.services.health import SupervisedComponent
from spoton_inference.services.sink_stats import OUTCOMES, SinkStats
from spoton_inference.services.sinks import SinkKind
from spoton_inference.storage.track_writer import TrackPointWriter


@dataclasses.dataclass(frozen=True, slots=True)
class RecordingFigures:
    """The recording cache's and the object store's figures (files/recording_cache.py, files/object_store.py)."""

    cache_bytes: int
    cache_limit_bytes: int
    # Fetches waiting for room in the cache now.
    cache_waiting: int
    bytes_received: int
    body_requests: int
    retries: int


Supervised = Callable[[], Sequence[SupervisedComponent]]
# The recordings' figures now (None: recordings in object storage are not set up).
Recordings = Callable[[], RecordingFigures | None]
# Each Triton endpoint's counters (pipeline/triton_pool.py: TritonPool.stats).
TritonEndpoints = Callable[[], Sequence[EndpointStats]]


def _unsupervised() -> Sequence[SupervisedComponent]:
    return ()


def _no_recordings() -> RecordingFigures | None:
    return None


def _no_endpoints() -> Sequence[EndpointStats]:
    return ()


class ServiceCollector(Collector):
    def __init__(
        self,
        writer: TrackPointWriter,
        live: LiveStats,
        supervised: Supervised = _unsupervised,
        sinks: SinkStats | None = None,
        triton: TritonEndpoints = _no_endpoints,
        recordings: Recordings = _no_recordings,
    ) -> None:
        self._writer = writer
        self._triton = triton
        self._recordings = recordings
        self._live = live
        self._supervised = supervised
        # Without the dispatcher's counters the sink metrics are still exported, at zero.
        self._sinks = sinks or SinkStats()

    def collect(self) -> Iterator[Metric]:
        w, c = self._writer, self._writer.counters
        for name, value, doc in (
            ("written", c.written, "Track points committed to PostgreSQL, journal replays included."),
            ("replayed", c.replayed, "Track points committed from the local journal."),
            ("spilled", c.spilled, "Track points moved to the local journal while PostgreSQL could not take them."),
            (
                "duplicates_skipped",
                c.duplicates_skipped,
                "Track points of batches already written (a lost acknowledgement), not written again.",
            ),
            (
                "lost",
                c.lost,
                "Track points dropped: memory and journal full while PostgreSQL was away, memory full while a "
                "write hung, rows PostgreSQL rejected, or a torn journal record found at start.",
            ),
        ):
            yield CounterMetricFamily(f"spoton_track_points_{name}", doc, value=value)
        yield CounterMetricFamily(
            "spoton_track_point_write_retries", "Track-point batch writes that failed (retried).", value=c.retries
        )
        yield GaugeMetricFamily("spoton_track_points_buffered", "Track points in memory, not yet written.", w.buffered)
        yield GaugeMetricFamily(
            "spoton_track_points_journaled", "Track points in the local journal, not yet written.", w.journaled
        )
        yield GaugeMetricFamily("spoton_track_point_journal_bytes", "Size of the local journal file.", w.journal_bytes)
        yield GaugeMetricFamily(
            "spoton_postgres_writable", "1 if the last track-point write to PostgreSQL succeeded.", int(w.available)
        )
        live = self._live
        yield GaugeMetricFamily("spoton_live_streams_open", "StreamFrames calls open now.", live.open_streams)
        for name, value, doc in (
            ("received", live.frames_received, "Frames received on StreamFrames calls."),
            ("answered", live.frames_answered, "Frames answered on StreamFrames calls."),
            ("dropped", live.frames_dropped, "Frames dropped by StreamFrames back-pressure (oldest first)."),
        ):
            yield CounterMetricFamily(f"spoton_live_frames_{name}", doc, value=value)
        restarts = CounterMetricFamily(
            "spoton_component_restarts",
            "Restarts of an embedded-stack component (triton, postgres, redis, inference, facade) after it died.",
            labels=["component"],
        )
        for component in self._supervised():
            restarts.add_metric([component.name], component.restarts)
        yield restarts
        yield from _sink_metrics(self._sinks)
        yield from _triton_metrics(self._triton())
        yield from _recording_metrics(self._recordings() or RecordingFigures(0, 0, 0, 0, 0, 0))


def _recording_metrics(r: RecordingFigures) -> Iterator[Metric]:
    """Recordings in object storage: the local cache and the S3 traffic (all 0 when not set up)."""
    yield GaugeMetricFamily("spoton_recording_cache_bytes", "Bytes of recordings in the local cache.", r.cache_bytes)
    yield GaugeMetricFamily(
        "spoton_recording_cache_limit_bytes", "SPOTON_RECORDING_CACHE_MAX_BYTES.", r.cache_limit_bytes
    )
    waiting = "Downloads waiting for running tasks to free room in the cache."
    yield GaugeMetricFamily("spoton_recording_cache_waiting", waiting, r.cache_waiting)
    received = "Bytes of object bodies read from S3."
    yield CounterMetricFamily("spoton_s3_bytes_received", received, value=r.bytes_received)
    yield CounterMetricFamily(
        "spoton_s3_requests", "GETs of object bodies (downloads, their resumes, small reads).", value=r.body_requests
    )
    yield CounterMetricFamily("spoton_s3_retries", "Transient S3 errors retried.", value=r.retries)


def _triton_metrics(endpoints: Sequence[EndpointStats]) -> Iterator[Metric]:
    """Calls per Triton endpoint of SPOTON_TRITON_GRPC_URL (pipeline/triton_pool.py)."""
    labels = ["endpoint"]
    requests = CounterMetricFamily(
        "spoton_triton_requests",
        "Model calls sent to a Triton endpoint, retries of a call on another endpoint included.",
        labels=labels,
    )
    failures = CounterMetricFamily(
        "spoton_triton_failures",
        "Model calls that found a Triton endpoint unavailable: it is skipped for a back-off and the call goes "
        "to another endpoint that is up.",
        labels=labels,
    )
    up = GaugeMetricFamily(
        "spoton_triton_endpoint_up",
        "1 while a Triton endpoint takes calls, 0 during its back-off after a failed call or readiness probe.",
        labels=labels,
    )
    for endpoint in endpoints:
        requests.add_metric([endpoint.url], endpoint.requests)
        failures.add_metric([endpoint.url], endpoint.failures)
        up.add_metric([endpoint.url], int(endpoint.up))
    yield from (requests, failures, up)


def _sink_metrics(stats: SinkStats) -> Iterator[Metric]:
    """Webhook and MQTT deliveries (services/sink_dispatcher.py), by sink kind."""
    pending = GaugeMetricFamily(
        "spoton_sink_pending_deliveries",
        "Events waiting in the sink outbox (PostgreSQL) to be delivered, as of the dispatcher's last pass.",
        labels=["kind"],
    )
    outcomes = CounterMetricFamily(
        "spoton_sink_deliveries",
        "Delivery attempts by outcome: delivered (acknowledged), retried (failed, tried again after a "
        "back-off), failed (refused for good, the sink moved on).",
        labels=["kind", "outcome"],
    )
    latency = HistogramMetricFamily(
        "spoton_sink_delivery_seconds",
        "Time from handing a delivery to the webhook or MQTT client to its acknowledgement or failure.",
        labels=["kind"],
    )
    for kind in SinkKind:
        pending.add_metric([kind.value], stats.pending.get(kind.value, 0))
        for outcome in OUTCOMES:
            outcomes.add_metric([kind.value, outcome], stats.outcomes[(kind.value, outcome)])
        histogram = stats.latency[kind.value]
        latency.add_metric([kind.value], histogram.cumulative(), sum_value=histogram.sum_s)
    yield pending
    yield outcomes
    yield latency
    yield CounterMetricFamily(
        "spoton_sink_dropped_deliveries",
        "Pending deliveries dropped, oldest first, because more than SPOTON_SINK_MAX_PENDING waited for one sink.",
        value=stats.dropped,
    )


def start_metrics_server(
    host: str,
    port: int,
    writer: TrackPointWriter,
    live: LiveStats,
    supervised: Supervised = _unsupervised,
    sinks: SinkStats | None = None,
    cameras: Pulls = dict,
    triton: TritonEndpoints = _no_endpoints,
    recordings: Recordings = _no_recordings,
) -> WSGIServer:
    """Serve the metrics (and the process's own) until ``shutdown()`` is called on the result.

    ``supervised`` gives the embedded stack's components with their restart counts, ``sinks``
    the event-sink dispatcher's counters, ``cameras`` the live cameras' pulls (camera_metrics.py),
    ``triton`` each Triton endpoint's counters (``app.models.stats``), ``recordings`` the
    recording cache's and object store's figures (``app.recording_figures``)."""
    registry = CollectorRegistry()
    service = ServiceCollector(writer, live, supervised, sinks, triton, recordings)
    for collector in (service, CameraCollector(cameras), PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
        registry.register(collector)
    server, _ = start_http_server(port, addr=host, registry=registry)
    return server
