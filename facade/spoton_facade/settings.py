"""The facade's settings, read from the same ``SPOTON_*`` variables as the inference service.

The facade must not import ``spoton_inference``, so it keeps this small copy of the fields it
needs. Names follow the shared rule ``SPOTON_<FIELD>``, so one environment configures both.

Example:
    >>> s = FacadeSettings.from_env({"SPOTON_FACADE_PORT": "9000", "SPOTON_DATA_DIR": "/tmp/x"})
    >>> s.facade_port, str(s.media_root)
    (9000, '/tmp/x/media')
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path

PREFIX = "SPOTON_"
REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclasses.dataclass(frozen=True, slots=True)
class FacadeSettings:
    """Where the facade listens, which inference service it calls and where media lives."""

    # Where the facade and the gRPC API listen: 127.0.0.1 (this machine) or 0.0.0.0 (every
    # interface); facade_host, when set, overrides it for the facade alone.
    bind_host: str = "127.0.0.1"
    facade_host: str = ""
    facade_port: int = 8080
    # The gRPC target of the inference service.
    inference_target: str = "127.0.0.1:50051"
    # Largest gRPC message accepted or sent; must match the inference service's limit.
    grpc_max_message_bytes: int = 32 * 1024 * 1024
    data_dir: Path = REPO_ROOT / "var" / "data"
    # Where the inference service publishes task media; defaults to <data_dir>/media.
    media_root: Path = dataclasses.field(default=Path())
    # Browser origins allowed by CORS; empty turns CORS off.
    cors_allow_origins: tuple[str, ...] = ()
    # Idle time after which an SSE stream gets a comment line, so proxies keep it open.
    sse_heartbeat_seconds: float = 15.0
    # Newest events of each followed task kept for its browsers, which share one WatchTask call:
    # a browser resuming within them is served from memory, and one falling further behind is
    # cut off (its stream ends; EventSource resumes with Last-Event-ID).
    sse_replay_events: int = 1024
    # The largest job upload: the facade refuses a bigger multipart body (413) as it streams in.
    job_max_upload_bytes: int = 2 * 1024**3

    def __post_init__(self) -> None:
        if self.media_root == Path():
            object.__setattr__(self, "media_root", self.data_dir / "media")
        if not self.facade_host:
            object.__setattr__(self, "facade_host", self.bind_host)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> FacadeSettings:
        """Build settings from ``SPOTON_<FIELD>`` variables; absent ones keep their defaults."""
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        for field in dataclasses.fields(cls):
            raw = env.get(env_name(field.name))
            if raw is not None:
                values[field.name] = _parse(str(field.type), raw, field.name)
        return cls(**values)  # type: ignore[arg-type]


def env_name(field_name: str) -> str:
    """The environment variable that sets ``field_name``."""
    return PREFIX + field_name.upper()


def env_names() -> list[str]:
    """Every variable the facade reads, for checks against the shared settings and compose."""
    return [env_name(f.name) for f in dataclasses.fields(FacadeSettings)]


def _parse(kind: str, raw: str, name: str) -> object:
    try:
        if kind == "Path":
            return Path(raw).expanduser()
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
        if kind.startswith("tuple"):
            return tuple(part.strip() for part in raw.split(",") if part.strip())
    except ValueError as exc:
        raise ValueError(f"{env_name(name)}={raw!r} is not a valid {kind}") from exc
    return raw
