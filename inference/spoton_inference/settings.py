"""One settings object for the whole service, read from ``SPOTON_*`` environment variables.

The embedded stack and ``docker-compose.yml`` use the same names; ``tests/test_compose.py``
checks that every variable read here appears in the compose file.

Example:
    >>> s = Settings.from_env({"SPOTON_GRPC_PORT": "6000", "SPOTON_DATA_DIR": "/tmp/x"})
    >>> s.grpc_port, str(s.media_root)
    (6000, '/tmp/x/media')
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path

from spoton_inference.domain.image_header import DEFAULT_MAX_IMAGE_PIXELS
from spoton_inference.files.media import MEDIA_CACHE_DIR, MediaRoot, shared_videos
from spoton_inference.tracking.reid_defaults import DEFAULT_DIFFERENT_DISTANCE, DEFAULT_SAME_DISTANCE

PREFIX = "SPOTON_"
REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclasses.dataclass(frozen=True, slots=True)
class Settings:
    # Where all runtime state lives: embedded databases, media, exports.
    data_dir: Path = REPO_ROOT / "var" / "data"
    # Where task media (sub-videos) is published for the facade to serve.
    media_root: Path = dataclasses.field(default=Path())
    model_repository: Path = REPO_ROOT / "model_repository"

    # Where the facade and the gRPC API listen for clients: 127.0.0.1 keeps them on this
    # machine, 0.0.0.0 (or an address of one interface) exposes them to others.
    bind_host: str = "127.0.0.1"
    # The gRPC API's own listen address ("" = bind_host) and port. `spoton serve` listens on
    # grpc_port and facade_port (and refuses to start when one is taken); stacks started for
    # one run (`spoton demo`, `spoton process`) take free ports unless these are set.
    grpc_host: str = ""
    grpc_port: int = 50051
    # Largest gRPC message accepted or sent; frames are big.
    grpc_max_message_bytes: int = 32 * 1024 * 1024
    # Seconds a unary RPC may run when the client set no deadline (a client deadline, longer
    # or shorter, is honoured instead); streams run until their client leaves or its deadline.
    grpc_unary_timeout_s: float = 60.0
    # Most pixels an image in a request may announce (JPEG/PNG header, raw width x height):
    # larger ones are refused before decoding. The default admits 8K UHD (33 Mpx).
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS
    # Frames one StreamFrames stream works on at once (detected ahead while earlier ones are
    # tracked in order): a client keeping at most this many unanswered never loses one; one
    # sending further ahead has the oldest waiting frames dropped, counted in dropped_frames.
    stream_max_in_flight: int = 4

    # Triton's gRPC endpoint, or several comma-separated (host:port,host:port), all serving the
    # same models: each request goes to one, a dead one is skipped (pipeline/triton_pool.py).
    triton_grpc_url: str = "127.0.0.1:8001"
    triton_http_url: str = "http://127.0.0.1:8000"
    detector_model: str = "detector"
    reid_model: str = "reid"
    detection_threshold: float = 0.45
    # How long a running task or job waits for an unreachable Triton (retrying the same frame
    # with back-off) before it fails with a reason naming Triton.
    triton_outage_wait_s: float = 60.0
    # Frames and crops reach Triton through POSIX shared memory instead of inside each gRPC
    # request (pipeline/triton_shm.py): "auto" when triton_grpc_url is a loopback address,
    # "on" for a Triton on this host under another name (sharing /dev/shm), "off" never.
    # A Triton that cannot map the memory gets them over gRPC anyway.
    triton_shared_memory: str = "auto"
    # Tracking (spoton_inference/tracking). Re-ID cosine distances typical of one person and
    # of two people for the embedder in use: appearance costs 0 at the first and 1 at the
    # second, so the weights below mean the same with any model. They are the prior: with
    # reid_self_calibrate each task fits them on its own frames (tracking/calibration.py) and
    # moves from there, so a dropped-in embedder needs no hand measurement.
    reid_same_distance: float = DEFAULT_SAME_DISTANCE
    reid_different_distance: float = DEFAULT_DIFFERENT_DISTANCE
    reid_self_calibrate: bool = True
    # Recorded video (tasks over sub-videos, jobs) is refined after each window of at most
    # this many global frames (a sub-video batch, or a slice of a long one) with the whole
    # window in view (tracking/refine); the refined tracks replace the online ones in exports,
    # history and job outputs. Live output is always online.
    refine_recorded: bool = True
    refine_window_frames: int = 3000
    # Cross-camera cue weights (normalised): with a strong embedder, raise appearance.
    association_appearance_weight: float = 0.5
    association_geometry_weight: float = 0.35
    association_time_weight: float = 0.15
    # Identities unseen this long are forgotten (re-entry later gets a new global id).
    association_max_gap_s: float = 60.0
    # The Re-ID gallery mirrored to Redis per task, bounded in identities and age.
    gallery_max_size: int = 1000
    gallery_max_age_s: float = 600.0

    postgres_dsn: str = "postgresql://postgres@127.0.0.1:5432/spoton"
    redis_url: str = "redis://127.0.0.1:6379/0"
    # Longest an RPC waits on PostgreSQL (a connection, a lookup) before answering UNAVAILABLE.
    postgres_timeout_s: float = 1.0
    # Longest an RPC waits on Redis before answering from PostgreSQL alone (or UNAVAILABLE).
    redis_timeout_s: float = 1.0
    # Redis connections this process opens at most; a command waits for a free one. Watchers
    # share one subscription per task, so this does not grow with them.
    redis_max_connections: int = 32
    # Connections, besides those, for the blocking reads that wake WatchTask streams: one per
    # watched task, whatever its watchers; more watched tasks than this wait their turn.
    redis_watch_connections: int = 8

    # Events kept per task in the Redis stream, for WatchTask resume.
    event_retention: int = 100_000
    # Task events held in memory while Redis is unreachable, published when it is back.
    event_outbox_max: int = 10_000
    # This replica's name among those sharing PostgreSQL and Redis; "" = <hostname>:<grpc_port>.
    replica_id: str = ""
    # A replica's lease in Redis lives this long unrenewed: a replica gone this long has its
    # tasks failed over by the others, and one that could not renew for this long stops its own.
    replica_lease_ttl_s: float = 120.0
    # Cameras of one recorded task run on the replica that starts it, at most this many; the
    # rest go in shards to other replicas, which send it their tracks ("0" = no limit).
    max_cameras_per_replica: int = 0
    # Days of history (track points, events, identities) kept in PostgreSQL; 0 keeps all.
    history_retention_days: int = 30
    # TimescaleDB only: track points older than this many days are compressed; 0 never.
    history_compress_after_days: int = 7

    # The facade's own listen address ("" = bind_host) and port; see grpc_host.
    facade_host: str = ""
    facade_port: int = 8080
    # The gRPC target the facade calls.
    inference_target: str = "127.0.0.1:50051"
    # Base the inference service puts in media URLs; the facade serves that path.
    media_url_prefix: str = "/api/v1/media"
    # Browser-playable copies (H.264 MP4) of sub-videos that are not, in <data_dir>/media-cache:
    # the most recently used kept within this many bytes, and at most this many made at once
    # (uploads are converted in place, in the same threads).
    media_cache_max_bytes: int = 20 * 1024**3
    media_convert_workers: int = 2
    cors_allow_origins: tuple[str, ...] = ()
    # Idle seconds after which an SSE stream gets a heartbeat comment.
    sse_heartbeat_seconds: float = 15.0
    # Newest events of each followed task the facade keeps for its browsers, which share one
    # WatchTask call per task: a browser resuming within them is served from memory, and one
    # falling further behind than this is cut off (it resumes with Last-Event-ID).
    sse_replay_events: int = 1024

    # Jobs (uploaded videos). The largest upload accepted: counted while it streams to disk,
    # refused (RESOURCE_EXHAUSTED, HTTP 413) the moment it is exceeded.
    job_max_upload_bytes: int = 2 * 1024**3
    # Jobs processed at once; the others wait in the queue, which is stored in PostgreSQL.
    job_concurrency: int = 1
    # Starts a job gets: a restart of the service runs its running jobs again from the start,
    # and fails (with the reason) a job that has been started this many times already.
    job_max_attempts: int = 3
    # Uploads and job directories; replicas sharing a database share it ("" = <data_dir>/jobs).
    jobs_dir: Path = Path()

    # Recordings in S3-compatible object storage (environments registered as s3://bucket/prefix):
    # the endpoint ("" = AWS for s3_region), region and credentials every such environment uses.
    s3_endpoint_url: str = ""
    s3_region: str = "us-east-1"
    s3_access_key_id: str = dataclasses.field(default="", repr=False)
    s3_secret_access_key: str = dataclasses.field(default="", repr=False)
    # Transient S3 errors are retried with doubling waits up to s3_retry_max_s, for at most
    # s3_outage_wait_s in all; then the task fails with the reason.
    s3_retry_max_s: float = 10.0
    s3_outage_wait_s: float = 120.0
    # Downloaded recordings, in <data_dir>/recordings-cache, least recently used evicted past this
    # (never a file a running task still needs).
    recording_cache_max_bytes: int = 20 * 1024**3
    # Uploads streaming in at once (each is written once, straight to its place); one more is
    # refused with RESOURCE_EXHAUSTED (HTTP 503 with Retry-After) rather than queued.
    max_concurrent_uploads: int = 2
    # Free bytes an upload must leave on the data directory's disk: refused (RESOURCE_EXHAUSTED,
    # HTTP 507) before its first chunk when its announced size would not fit, or as it streams.
    upload_disk_reserve_bytes: int = 1024**3
    # Per credential (domain/rate_limit.py): task starts and uploads a minute, each one a burst of
    # that many; past it RESOURCE_EXHAUSTED (HTTP 429) with retry-after. 0 turns a limit off.
    rate_limit_task_starts_per_min: int = 30
    rate_limit_uploads_per_min: int = 10
    # Audit log rows (who did what) older than this are deleted.
    audit_retention_days: int = 365
    # How long StartTask and UploadJob remember an idempotency key (and answer a retry with the
    # task or job it created); after that the key may start something new.
    idempotency_key_ttl_s: float = 24 * 3600.0
    # Track-point history (storage/track_writer.py): rows per COPY batch; rows kept in memory
    # while PostgreSQL cannot take them, before whole batches spill to the journal under
    # data_dir; the journal's size limit, past which track points are counted as lost.
    writer_batch_size: int = 10_000
    writer_buffer_rows: int = 100_000
    writer_journal_max_bytes: int = 1024**3
    # Authentication (services/auth.py, grpc_api/access.py). Off only for local development on a
    # trusted machine: every call then acts as an admin.
    auth_enabled: bool = True
    # The bootstrap admin key (spk_<12>_<43>; `python -m spoton_inference new-api-key` makes
    # one). Unset: a key is created on first start, printed once, and written to
    # <data_dir>/secrets/admin_api_key (owner-only).
    admin_api_key: str = dataclasses.field(default="", repr=False)
    # Signs access tokens (HS256). Unset: generated once into <data_dir>/secrets/jwt_secret;
    # replicas sharing a database must share it.
    jwt_secret: str = dataclasses.field(default="", repr=False)
    access_token_ttl_s: float = 900.0
    # An external OpenID Connect issuer whose tokens are accepted too (JWKS from its discovery
    # document), the audience they must carry ("" = not checked) and the claim naming the role.
    oidc_issuer: str = ""
    oidc_audience: str = ""
    oidc_role_claim: str = "spoton_role"
    # Prometheus text metrics at http://<grpc_host>:<port>/metrics; 0 turns them off.
    metrics_port: int = 0
    # Seconds between rounds of dependency probes; GetHealth and grpc.health.v1 answer from the
    # newest round, so a dead component reads failed within this plus the 1.5 s probe bound.
    health_probe_interval_s: float = 1.0
    # Live cameras (RTSP/HTTP sources the service pulls): the bound on opening a source and on
    # each read after, and the longest wait between reconnect attempts (back-off doubles up to it).
    source_connect_timeout_s: float = 10.0
    source_reconnect_max_s: float = 30.0
    # Seconds between health checks of every live camera (0 turns them off), checks at once,
    # and days of check history kept in PostgreSQL (0 keeps all).
    camera_health_interval_s: float = 60.0
    camera_health_concurrency: int = 4
    camera_health_retention_days: int = 7
    # Hosts a camera source may point at although they are loopback or link-local (names,
    # addresses or CIDRs, comma-separated; e.g. 127.0.0.1 for local test cameras): others are
    # refused, and so is every port of the service itself (services/source_policy.py).
    source_allowed_hosts: tuple[str, ...] = ()
    # Fernet keys sealing camera passwords at rest, comma-separated: the first encrypts, all
    # decrypt (rotate: put a new key first, restart, then drop the old one). Unset: a key
    # generated once into <data_dir>/secrets/secret_key (services/secrets.py).
    secret_keys: tuple[str, ...] = ()
    # Event sinks (webhooks, MQTT; services/sink_dispatcher.py). A JSON file of sink definitions
    # upserted by name at start-up ("" = none; the README's "Event sinks" shows the format).
    sinks_path: str = ""
    # Pending deliveries kept per sink: past it the oldest are marked dropped and counted.
    sink_max_pending: int = 10_000
    # Days finished deliveries (delivered, failed, dropped) stay readable before they are pruned.
    sink_retention_days: int = 7
    # The dispatcher wakes on PostgreSQL NOTIFY; it also polls this often (a lost notification,
    # a retry that came due, the pending bound, the pending gauge).
    sink_poll_interval_s: float = 2.0
    # Retries of a failing head-of-line delivery: the first wait, doubling up to the cap (each
    # with up to 20 % jitter); the sink's later events wait behind it, other sinks go on.
    sink_retry_initial_s: float = 1.0
    sink_retry_max_s: float = 300.0
    # One delivery's bound (connect, send, acknowledgement), and open connections per transport.
    sink_timeout_s: float = 10.0
    sink_max_connections: int = 16
    # Hosts a webhook may point at although they are loopback or link-local (names, addresses or
    # CIDRs, comma-separated); others are refused, and so is every port of the service itself.
    sink_allowed_hosts: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.media_root == Path():
            object.__setattr__(self, "media_root", self.data_dir / "media")
        if self.jobs_dir == Path():
            object.__setattr__(self, "jobs_dir", self.data_dir / "jobs")
        if self.replica_lease_ttl_s <= 0:
            raise ValueError(f"SPOTON_REPLICA_LEASE_TTL_S must be above 0, got {self.replica_lease_ttl_s}")
        if self.max_cameras_per_replica < 0:
            raise ValueError(f"SPOTON_MAX_CAMERAS_PER_REPLICA must be 0 or more, got {self.max_cameras_per_replica}")
        for host in ("grpc_host", "facade_host"):
            if not getattr(self, host):
                object.__setattr__(self, host, self.bind_host)
        if self.stream_max_in_flight < 1:
            raise ValueError(f"SPOTON_STREAM_MAX_IN_FLIGHT must be at least 1, got {self.stream_max_in_flight}")
        if self.health_probe_interval_s <= 0:
            raise ValueError(f"SPOTON_HEALTH_PROBE_INTERVAL_S must be above 0, got {self.health_probe_interval_s}")
        if not self.triton_grpc_urls or len(set(self.triton_grpc_urls)) != len(self.triton_grpc_urls):
            raise ValueError(
                f"SPOTON_TRITON_GRPC_URL must list one or more distinct host:port, got {self.triton_grpc_url!r}"
            )
        if self.sink_max_pending < 1:
            raise ValueError(f"SPOTON_SINK_MAX_PENDING must be at least 1, got {self.sink_max_pending}")
        if not 0 < self.sink_retry_initial_s <= self.sink_retry_max_s:
            raise ValueError(
                "SPOTON_SINK_RETRY_INITIAL_S must be above 0 and at most SPOTON_SINK_RETRY_MAX_S, got "
                f"{self.sink_retry_initial_s} and {self.sink_retry_max_s}"
            )

    @property
    def triton_grpc_urls(self) -> tuple[str, ...]:
        """The Triton endpoints SPOTON_TRITON_GRPC_URL lists (comma-separated, blanks dropped).

        >>> Settings(triton_grpc_url="triton-a:8001, triton-b:8001").triton_grpc_urls
        ('triton-a:8001', 'triton-b:8001')
        """
        return tuple(part.strip() for part in self.triton_grpc_url.split(",") if part.strip())

    @property
    def media(self) -> MediaRoot:
        """Where published files go, and the URL prefix the facade serves them under."""
        videos = shared_videos(self.data_dir / MEDIA_CACHE_DIR, self.media_cache_max_bytes, self.media_convert_workers)
        return MediaRoot(self.media_root, self.media_url_prefix, videos)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``SPOTON_<FIELD>`` variables; unknown fields keep defaults.

        ``SPOTON_<FIELD>_FILE`` names a file holding the value instead (Docker and Kubernetes
        secrets), one trailing newline dropped; giving both is an error.
        """
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        for field in dataclasses.fields(cls):
            name = env_name(field.name)
            raw, path = env.get(name), env.get(name + FILE_SUFFIX)
            if raw is not None and path:
                raise ValueError(f"{name} and {name}{FILE_SUFFIX} are both set: give one")
            if path:
                raw = Path(path).read_text().removesuffix("\n")
            if raw is None:
                continue
            values[field.name] = _parse(field.type, raw, field.name)
        return cls(**values)  # type: ignore[arg-type]

    def to_env(self) -> dict[str, str]:
        """The inverse of :meth:`from_env`, used to hand settings to child processes."""
        out: dict[str, str] = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            out[env_name(field.name)] = ",".join(value) if isinstance(value, tuple) else str(value)
        return out


# ``SPOTON_<FIELD>_FILE``: the setting's value read from that file.
FILE_SUFFIX = "_FILE"


def env_name(field_name: str) -> str:
    return PREFIX + field_name.upper()


def env_names() -> list[str]:
    return [env_name(f.name) for f in dataclasses.fields(Settings)]


def _parse_bool(raw: str) -> bool:
    word = raw.strip().lower()
    if word in ("1", "true", "yes", "on"):
        return True
    if word in ("0", "false", "no", "off"):
        return False
    raise ValueError(raw)


def _parse(type_name: object, raw: str, name: str) -> object:
    kind = str(type_name)
    try:
        if kind == "Path":
            return Path(raw).expanduser()
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
        if kind == "bool":
            return _parse_bool(raw)
        if kind.startswith("tuple"):
            return tuple(part.strip() for part in raw.split(",") if part.strip())
    except ValueError as exc:
        raise ValueError(f"{env_name(name)}={raw!r} is not a valid {kind}") from exc
    return raw
