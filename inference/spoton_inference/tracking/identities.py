"""Online cross-camera association: a global person id for every local track, frame by frame.

Each frame runs three passes over the cameras' confirmed tracks:

1. **keep**: a track that already has a global id keeps it, and tells its identity where
   the person stands now and what they look like;
2. **match**: the tracks reported for the first time are matched, all at once (Hungarian
   over new tracks x remembered identities), on three cues:

   - geometry: the map position against where the identity is *now* in another camera (two
     views of one person at one time agree within ``position_tolerance_m``), or else
     against where it was last seen, within walking reach of the time since;
   - appearance: the calibrated Re-ID cost against the identity's smoothed embedding;
   - time: evidence fades while an identity is unseen;

   an identity takes at most one track per camera: not one of a camera that sees it now,
   and when it takes a camera's new track, that camera's earlier one (lost) lets it go;
   tracks left over found new identities, and new tracks of one person seen by several
   cameras at once join one;
3. **merge**: two identities seen by different cameras on one spot of the map for
   ``merge_after_frames`` frames in a row are one person; the younger folds into the older.

Identities unseen for ``max_gap_s`` are forgotten and at most ``max_identities`` are kept,
so memory is bounded however long a stream runs. Recorded video is refined afterwards with
the whole window in view (:mod:`spoton_inference.tracking.refine`); this pass is what live
output shows.

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

from spoton_inference.tracking.appearance import Feature, ReidCalibration


@dataclasses.dataclass(frozen=True, slots=True)
class AssociationConfig:
    fps: float = 10.0
    # Metres per second a person can walk; gates geometric matches over time gaps.
    max_speed_mps: float = 2.5
    # Map error tolerated between two views of the same person at the same time.
    position_tolerance_m: float = 1.0
    # Identities unseen for longer than this are forgotten (re-entry after this is a new id).
    max_gap_s: float = 60.0
    max_identities: int = 1000
    # Cue weights; they are normalised, so only their ratios matter.
    appearance_weight: float = 0.5
    geometry_weight: float = 0.35
    time_weight: float = 0.15
    calibration: ReidCalibration = dataclasses.field(default_factory=ReidCalibration)
    # Evidence fades with time unseen: a gap of this long costs the whole time weight.
    time_scale_s: float = 3.0
    # Combined cost (0..1) above which a new identity is created instead.
    max_cost: float = 0.5
    embedding_momentum: float = 0.9
    # Two identities seen by different cameras within half the position tolerance of each
    # other for this many frames in a row are one person.
    merge_after_frames: int = 5


@dataclasses.dataclass(frozen=True, slots=True)
class Observation:
    camera_id: str
    track_id: int
    map_xy: tuple[float, float] | None
    embedding: np.ndarray | None
    is_new: bool


@dataclasses.dataclass(slots=True)
class IdentityState:
    """What is known of one person: the unit of the gallery."""

    global_id: int
    last_frame: int
    last_xy: tuple[float, float] | None
    feature: Feature | None = None
    # This frame's map position per camera seeing the identity.
    now_xy: dict[str, tuple[float, float] | None] = dataclasses.field(default_factory=dict)
    last_camera: str = ""

    @property
    def embedding(self) -> np.ndarray | None:
        return self.feature.vector if self.feature is not None else None


class GlobalIdentities:
    """Stateful assigner for one environment's stream of frames."""

    def __init__(self, config: AssociationConfig | None = None) -> None:
        self.config = config or AssociationConfig()
        self._by_track: dict[tuple[str, int], int] = {}
        self._identities: dict[int, IdentityState] = {}
        self._next_id = 1
        self._together: dict[tuple[int, int], int] = {}

    @property
    def num_identities(self) -> int:
        """Identities created so far (forgotten ones included)."""
        return self._next_id - 1

    @property
    def gallery(self) -> list[IdentityState]:
        """The identities still remembered, most recently seen first."""
        return sorted(self._identities.values(), key=lambda i: -i.last_frame)

    def recalibrate(self, calibration: ReidCalibration) -> None:
        self.config = dataclasses.replace(self.config, calibration=calibration)

    def assign(self, frame: int, observations: list[Observation]) -> dict[tuple[str, int], int]:
        """Global ids for this frame's observations, keyed by (camera_id, track_id)."""
        for ident in self._identities.values():
            ident.now_xy.clear()
        known = [o for o in observations if (o.camera_id, o.track_id) in self._by_track]
        fresh = [o for o in observations if (o.camera_id, o.track_id) not in self._by_track]
        self._keep(frame, known)
        self._match(frame, fresh)
        self._merge(observations)
        self._forget(frame, {(o.camera_id, o.track_id) for o in observations})
        return {(o.camera_id, o.track_id): self._by_track[(o.camera_id, o.track_id)] for o in observations}

    # --- passes ------------------------------------------------------------------------

    def _keep(self, frame: int, known: list[Observation]) -> None:
        for obs in known:
            gid = self._by_track[(obs.camera_id, obs.track_id)]
            # setdefault: a live track outlives its identity only when more than max_identities are live.
            self._observe(self._identities.setdefault(gid, IdentityState(gid, frame, obs.map_xy)), frame, obs)

    def _match(self, frame: int, fresh: list[Observation]) -> None:
        unmatched = []
        for obs, gid in self._best(frame, fresh):
            if gid is None:
                unmatched.append(obs)
            else:
                self._join(frame, obs, gid)
        # New people seen by several cameras at once: each view joins an identity this loop
        # just created when it fits one, so one person entering two views is one identity.
        for obs in unmatched:
            ((_, gid),) = self._best(frame, [obs])
            self._join(frame, obs, gid if gid is not None else self._new_identity(frame, obs))

    def _merge(self, observations: list[Observation]) -> None:
        cfg = self.config
        seen = sorted({self._by_track[(o.camera_id, o.track_id)] for o in observations})
        together: dict[tuple[int, int], int] = {}
        for i, a in enumerate(seen):
            for b in seen[i + 1 :]:
                ia, ib = self._identities[a], self._identities[b]
                if ia.now_xy.keys() & ib.now_xy.keys():
                    continue  # both in one camera: two people
                pa = [xy for xy in ia.now_xy.values() if xy]
                pb = [xy for xy in ib.now_xy.values() if xy]
                if not pa or not pb:
                    continue
                dist = min(float(np.hypot(x1 - x2, y1 - y2)) for x1, y1 in pa for x2, y2 in pb)
                alike = ia.embedding is None or ib.embedding is None or self._appearance(ia.embedding, ib.embedding) < 1
                if dist <= cfg.position_tolerance_m / 2 and alike:
                    together[(a, b)] = self._together.get((a, b), 0) + 1
        self._together = together
        for (a, b), n in sorted(together.items()):
            if n >= cfg.merge_after_frames and a in self._identities and b in self._identities:
                self._fold(b, into=a)

    def _forget(self, frame: int, active: set[tuple[str, int]]) -> None:
        """Drop identities unseen for ``max_gap_s`` and, past ``max_identities``, the stalest."""
        horizon = frame - self.config.max_gap_s * self.config.fps
        keep = [i for i in self._identities.values() if i.last_frame >= horizon]
        if len(keep) > self.config.max_identities:
            keep = sorted(keep, key=lambda i: -i.last_frame)[: self.config.max_identities]
        if len(keep) == len(self._identities):
            return
        self._identities = {i.global_id: i for i in keep}
        # A forgotten identity's ended tracks go too; a live track keeps its id.
        self._by_track = {k: g for k, g in self._by_track.items() if g in self._identities or k in active}

    # --- helpers -----------------------------------------------------------------------

    def _best(self, frame: int, fresh: list[Observation]) -> list[tuple[Observation, int | None]]:
        candidates = list(self._identities.values())
        if not fresh or not candidates:
            return [(o, None) for o in fresh]
        cost = np.array([[self._cost(frame, o, c) for c in candidates] for o in fresh])
        rows, cols = linear_sum_assignment(np.minimum(cost, 1e6))
        chosen = {
            r: candidates[c].global_id for r, c in zip(rows, cols, strict=True) if cost[r, c] <= self.config.max_cost
        }
        return [(o, chosen.get(i)) for i, o in enumerate(fresh)]

    def _cost(self, frame: int, obs: Observation, ident: IdentityState) -> float:
        cfg = self.config
        if obs.camera_id in ident.now_xy:
            return np.inf  # one person is one track per camera
        dt = (frame - ident.last_frame) / cfg.fps
        if dt > cfg.max_gap_s:
            return np.inf
        geo = self._geometry(frame, obs, ident)
        if not np.isfinite(geo):
            return np.inf
        app = 0.5
        if obs.embedding is not None and ident.embedding is not None:
            app = self._appearance(obs.embedding, ident.embedding)
        stale = 0.0 if ident.now_xy else min(1.0, max(0.0, dt - 1.0 / cfg.fps) / cfg.time_scale_s)
        total = cfg.geometry_weight + cfg.appearance_weight + cfg.time_weight
        return (cfg.geometry_weight * geo + cfg.appearance_weight * app + cfg.time_weight * stale) / total

    def _geometry(self, frame: int, obs: Observation, ident: IdentityState) -> float:
        """Map distance from the identity over how far it may be, 0..1; inf when out of reach.

        Neutral (0.5) when either side has no map position.
        """
        cfg = self.config
        if obs.map_xy is None:
            return 0.5
        now = [xy for cam, xy in ident.now_xy.items() if xy is not None and cam != obs.camera_id]
        if now:
            dist = min(float(np.hypot(obs.map_xy[0] - x, obs.map_xy[1] - y)) for x, y in now)
            reach = cfg.position_tolerance_m
        elif ident.last_xy is not None:
            dt = (frame - ident.last_frame) / cfg.fps
            dist = float(np.hypot(obs.map_xy[0] - ident.last_xy[0], obs.map_xy[1] - ident.last_xy[1]))
            reach = cfg.position_tolerance_m + cfg.max_speed_mps * dt
        else:
            return 0.5
        return dist / reach if dist <= reach else np.inf

    def _appearance(self, a: np.ndarray, b: np.ndarray) -> float:
        # Plain floats: on this per-pair hot path numpy scalars cost more than the maths.
        cal = self.config.calibration
        distance = 1.0 - float(a @ b)
        return min(1.0, max(0.0, (distance - cal.same) / max(cal.different - cal.same, 1e-6)))

    def _new_identity(self, frame: int, obs: Observation) -> int:
        gid = self._next_id
        self._next_id += 1
        self._identities[gid] = IdentityState(gid, frame, obs.map_xy)
        return gid

    def _join(self, frame: int, obs: Observation, gid: int) -> None:
        # An identity is held by one track per camera. A track joining it here is never one of
        # two seen in one frame (_cost), so the camera's earlier holder is unseen, lost by its
        # tracker: it lets the identity go, and is matched afresh should it be found again.
        self._release(obs.camera_id, gid)
        self._by_track[(obs.camera_id, obs.track_id)] = gid
        self._observe(self._identities[gid], frame, obs)

    def _release(self, camera_id: str, gid: int) -> None:
        """The identity's track in this camera, if any, no longer holds it."""
        self._by_track = {k: g for k, g in self._by_track.items() if g != gid or k[0] != camera_id}

    def _fold(self, gid: int, into: int) -> None:
        gone, kept = self._identities.pop(gid), self._identities[into]
        # Where both hold a track in one camera (at most one seen now: _merge), the one seen now
        # keeps the identity, else the older identity's; the other lets it go.
        cameras = {cam for (cam, _), g in self._by_track.items() if g == into}
        for cam in cameras & {cam for (cam, _), g in self._by_track.items() if g == gid}:
            self._release(cam, into if cam in gone.now_xy else gid)
        for key, g in self._by_track.items():
            if g == gid:
                self._by_track[key] = into
        kept.now_xy.update(gone.now_xy)
        if kept.feature is None:
            kept.feature = gone.feature
        self._together = {pair: n for pair, n in self._together.items() if gid not in pair}

    def _observe(self, ident: IdentityState, frame: int, obs: Observation) -> None:
        ident.now_xy[obs.camera_id] = obs.map_xy
        ident.last_frame = max(ident.last_frame, frame)
        ident.last_camera = obs.camera_id
        if obs.map_xy is not None:
            ident.last_xy = obs.map_xy
        if obs.embedding is not None:
            if ident.feature is None:
                ident.feature = Feature.of(obs.embedding)
            else:
                ident.feature.add(obs.embedding, self.config.embedding_momentum)
