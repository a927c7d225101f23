"""Cross-camera association: give every local track a global person id.

A new local track is matched against known identities on two cues:
- geometry: its map position against where each identity was last seen, gated by
  walking speed over the time since then;
- appearance: cosine similarity of Re-ID embeddings against the identity's smoothed one.

All new tracks of one global frame are matched at once (Hungarian), an identity takes at
most one track per camera, and a local track keeps its global id for life, so an id that
was emitted is never renumbered.

Example:
    >>> import numpy as np
    >>> g = GlobalIdentities()
    >>> a = g.assign(0, [Observation("c1", 1, (1.0, 1.0), None, is_new=True)])
    >>> b = g.assign(1, [Observation("c1", 1, (1.1, 1.0), None, is_new=False),
    ...                  Observation("c2", 7, (1.2, 1.0), None, is_new=True)])
    >>> a[("c1", 1)] == b[("c2", 7)]
    True
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy.optimize import linear_sum_assignment


@dataclasses.dataclass(frozen=True, slots=True)
class AssociationConfig:
    fps: float = 10.0
    # Metres per second a person can walk; gates geometric matches over time gaps.
    max_speed_mps: float = 2.5
    # Map error tolerated between two views of the same person at the same time.
    position_tolerance_m: float = 1.0
    # Identities unseen for longer than this are no longer geometric candidates.
    max_gap_s: float = 10.0
    appearance_weight: float = 0.3
    geometry_weight: float = 0.5
    # Evidence fades with time unseen: a gap of this long costs the whole time weight.
    time_scale_s: float = 3.0
    time_weight: float = 0.2
    # Combined cost above which a new identity is created instead.
    max_cost: float = 0.5
    embedding_momentum: float = 0.9


@dataclasses.dataclass(frozen=True, slots=True)
class Observation:
    camera_id: str
    track_id: int
    map_xy: tuple[float, float] | None
    embedding: np.ndarray | None
    is_new: bool


@dataclasses.dataclass(slots=True)
class _Identity:
    global_id: int
    last_frame: int
    last_xy: tuple[float, float] | None
    embedding: np.ndarray | None
    cameras_now: set[str] = dataclasses.field(default_factory=set)


class GlobalIdentities:
    """Stateful assigner for one task's environment."""

    def __init__(self, config: AssociationConfig | None = None) -> None:
        self.config = config or AssociationConfig()
        self._by_track: dict[tuple[str, int], int] = {}
        self._identities: dict[int, _Identity] = {}
        self._next_id = 1

    @property
    def num_identities(self) -> int:
        return len(self._identities)

    def assign(self, frame: int, observations: list[Observation]) -> dict[tuple[str, int], int]:
        """Global ids for this frame's observations, keyed by (camera_id, track_id)."""
        for ident in self._identities.values():
            ident.cameras_now.clear()
        known = [o for o in observations if (o.camera_id, o.track_id) in self._by_track]
        fresh = [o for o in observations if (o.camera_id, o.track_id) not in self._by_track]
        for obs in known:
            self._identities[self._by_track[(obs.camera_id, obs.track_id)]].cameras_now.add(obs.camera_id)

        for obs, gid in self._match(frame, fresh):
            if gid is None:
                gid = self._next_id
                self._next_id += 1
                self._identities[gid] = _Identity(gid, frame, obs.map_xy, None)
            self._by_track[(obs.camera_id, obs.track_id)] = gid
            self._identities[gid].cameras_now.add(obs.camera_id)

        result: dict[tuple[str, int], int] = {}
        for obs in observations:
            gid = self._by_track[(obs.camera_id, obs.track_id)]
            self._observe(self._identities[gid], frame, obs)
            result[(obs.camera_id, obs.track_id)] = gid
        return result

    def _match(self, frame: int, fresh: list[Observation]) -> list[tuple[Observation, int | None]]:
        candidates = list(self._identities.values())
        if not fresh or not candidates:
            return [(o, None) for o in fresh]
        cost = np.array([[self._cost(frame, o, c) for c in candidates] for o in fresh])
        rows, cols = linear_sum_assignment(np.minimum(cost, 1e6))
        chosen = {
            r: candidates[c].global_id for r, c in zip(rows, cols, strict=True) if cost[r, c] <= self.config.max_cost
        }
        return [(o, chosen.get(i)) for i, o in enumerate(fresh)]

    def _cost(self, frame: int, obs: Observation, ident: _Identity) -> float:
        cfg = self.config
        if obs.camera_id in ident.cameras_now:
            return np.inf  # one person is one track per camera
        dt = (frame - ident.last_frame) / cfg.fps
        if dt > cfg.max_gap_s:
            return np.inf
        geo = 0.5  # neutral when either side has no map position
        if obs.map_xy is not None and ident.last_xy is not None:
            reach = cfg.position_tolerance_m + cfg.max_speed_mps * dt
            dist = float(np.hypot(obs.map_xy[0] - ident.last_xy[0], obs.map_xy[1] - ident.last_xy[1]))
            if dist > reach:
                return np.inf
            geo = dist / reach
        app = 0.5
        if obs.embedding is not None and ident.embedding is not None:
            app = float(np.clip(1.0 - float(obs.embedding @ ident.embedding), 0.0, 1.0))
        stale = min(1.0, max(0.0, dt - 1.0 / cfg.fps) / cfg.time_scale_s)
        return cfg.geometry_weight * geo + cfg.appearance_weight * app + cfg.time_weight * stale

    def _observe(self, ident: _Identity, frame: int, obs: Observation) -> None:
        if frame >= ident.last_frame:
            ident.last_frame = frame
            if obs.map_xy is not None:
                ident.last_xy = obs.map_xy
        if obs.embedding is not None:
            if ident.embedding is None:
                ident.embedding = obs.embedding
            else:
                m = self.config.embedding_momentum
                mixed = m * ident.embedding + (1 - m) * obs.embedding
                ident.embedding = mixed / max(float(np.linalg.norm(mixed)), 1e-9)
