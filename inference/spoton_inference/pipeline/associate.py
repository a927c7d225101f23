"""Cross-camera association: give every local track a global person id.

A new local track is matched against the known identities on three cues:
- geometry: its map position against where the identity is *now* in another camera (two
  views of one person at one time must agree within ``position_tolerance_m``), or else
  against where it was last seen, gated by walking speed over the time since;
- appearance: the Re-ID distance to the identity's smoothed embedding, calibrated per
  embedder (:class:`AssociationConfig`'s ``reid_same_distance`` and
  ``reid_different_distance``) so the weights mean the same with any model;
- time: evidence fades while an identity is unseen, so a recent hand-over beats an old one.

All new tracks of one global frame are matched at once (Hungarian over tracks x
identities), and an identity takes at most one track per camera. A local track keeps its
global id until evidence says it is someone else: it stands where its identity's other views
are not (a split gives it a new identity), or its recent crops resemble another identity
that could stand there clearly better (a review moves it to that one). Identities are never
renumbered: an id that was emitted keeps meaning one person. Identities unseen for
``max_gap_s`` are forgotten and at most ``max_identities`` are kept, so memory is bounded
however long a task runs.

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

from spoton_inference.pipeline.reid_calibration import REID_DIFFERENT_DISTANCE, REID_SAME_DISTANCE
from spoton_inference.pipeline.track import calibrated_distance


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
    # Re-ID calibration: see reid_calibration.
    reid_same_distance: float = REID_SAME_DISTANCE
    reid_different_distance: float = REID_DIFFERENT_DISTANCE
    # Evidence fades with time unseen: a gap of this long costs the whole time weight.
    time_scale_s: float = 3.0
    # Combined cost (0..1) above which a new identity is created instead.
    max_cost: float = 0.5
    embedding_momentum: float = 0.9
    # Merge: two identities seen by different cameras within half the position tolerance
    # of each other for this many frames in a row are one person.
    merge_after_frames: int = 5
    # Split: a track further than twice the tolerance from its identity's other views for
    # this many frames in a row is someone else.
    split_after_frames: int = 5
    # Review: a track whose recent crops resemble another identity (one not in this camera
    # now, and able to stand where the track is) closer than its own by this calibrated
    # margin, at this many embeddings in a row, has passed to that person in an occlusion
    # and moves to their identity. Recent crops are a running mean of this momentum.
    review_margin: float = 0.1
    review_after: int = 3
    review_momentum: float = 0.5

    def appearance_cost(self, a: np.ndarray, b: np.ndarray) -> float:
        """Calibrated appearance distance of two unit embeddings, 0 (same person) .. 1 (not)."""
        # calibrated_distance in plain floats: on this per-pair hot path numpy scalars cost more than the maths.
        same = self.reid_same_distance
        distance = 1.0 - float(a @ b)
        return min(1.0, max(0.0, (distance - same) / max(self.reid_different_distance - same, 1e-6)))


@dataclasses.dataclass(frozen=True, slots=True)
class Observation:
    camera_id: str
    track_id: int
    map_xy: tuple[float, float] | None
    embedding: np.ndarray | None
    is_new: bool
    # This frame's crop embedding (unsmoothed) of a known track, for the identity review.
    crop: np.ndarray | None = None


@dataclasses.dataclass(slots=True)
class IdentityState:
    """What is known of one person: the unit of the gallery."""

    global_id: int
    last_frame: int
    last_xy: tuple[float, float] | None
    embedding: np.ndarray | None
    # This frame's map position per camera seeing the identity.
    now_xy: dict[str, tuple[float, float] | None] = dataclasses.field(default_factory=dict)
    last_camera: str = ""


class GlobalIdentities:
    """Stateful assigner for one task's environment."""

    def __init__(self, config: AssociationConfig | None = None) -> None:
        self.config = config or AssociationConfig()
        self._by_track: dict[tuple[str, int], int] = {}
        self._identities: dict[int, IdentityState] = {}
        self._next_id = 1
        # Consecutive-frame evidence for merges (pairs of ids) and splits (tracks).
        self._together: dict[tuple[int, int], int] = {}
        self._apart: dict[tuple[str, int], int] = {}
        self._joined: dict[tuple[str, int], int] = {}  # frame a track took its id
        # Review state per track: the frame of its last crop and a fast running mean of its
        # crops; the identity those last favoured over its own, and how many times in a row.
        self._recent: dict[tuple[str, int], tuple[int, np.ndarray]] = {}
        self._doubt: dict[tuple[str, int], tuple[int, int]] = {}
        self._swaps: dict[tuple[tuple[str, int], tuple[str, int]], int] = {}
        # Identities folded into another by the last assign(): gone id -> kept id.
        self.folded: dict[int, int] = {}

    @property
    def num_identities(self) -> int:
        """Identities created so far (forgotten ones included)."""
        return self._next_id - 1

    @property
    def gallery(self) -> list[IdentityState]:
        """The identities still remembered, most recently seen first."""
        return sorted(self._identities.values(), key=lambda i: -i.last_frame)

    def rename_track(self, camera_id: str, old_track_id: int, new_track_id: int) -> None:
        """Follow a local track that its camera's tracker renumbered (``CameraTracker.relabel`` and others)."""
        old, new = (camera_id, old_track_id), (camera_id, new_track_id)
        for state in (self._by_track, self._joined, self._apart, self._recent, self._doubt):
            if old in state:
                state[new] = state.pop(old)
        self._swaps = {pair: n for pair, n in self._swaps.items() if old not in pair}

    def exchange_tracks(self, camera_id: str, a: int, b: int) -> None:
        """Follow two local tracks that exchanged ids."""
        self.rename_track(camera_id, a, -1)
        self.rename_track(camera_id, b, a)
        self.rename_track(camera_id, -1, b)

    def assign(self, frame: int, observations: list[Observation]) -> dict[tuple[str, int], int]:
        """Global ids for this frame's observations, keyed by (camera_id, track_id)."""
        for ident in self._identities.values():
            ident.now_xy.clear()
        self.folded = {}
        known = [o for o in observations if (o.camera_id, o.track_id) in self._by_track]
        fresh = [o for o in observations if (o.camera_id, o.track_id) not in self._by_track]
        # Known tracks first, so new ones are compared with where everyone is this frame.
        for obs in known:
            gid = self._by_track[(obs.camera_id, obs.track_id)]
            # setdefault: a live track outlives its identity only when more than max_identities are live.
            self._observe(self._identities.setdefault(gid, IdentityState(gid, frame, obs.map_xy, None)), frame, obs)
        unmatched = []
        for obs, gid in self._match(frame, fresh):
            if gid is None:
                unmatched.append(obs)
            else:
                self._join(frame, obs, gid)
        # New people seen by several cameras at once: each view joins an identity this loop
        # just created when it fits one, so one person entering two views is one identity.
        for obs in unmatched:
            ((_, gid),) = self._match(frame, [obs])
            if gid is None:
                gid = self._new_identity(frame, obs)
            self._join(frame, obs, gid)
        self._split(frame, observations)
        self._review(frame, known)
        self._merge(observations)
        self._forget(frame, {(o.camera_id, o.track_id) for o in observations})
        return {(o.camera_id, o.track_id): self._by_track[(o.camera_id, o.track_id)] for o in observations}

    def _new_identity(self, frame: int, obs: Observation) -> int:
        gid = self._next_id
        self._next_id += 1
        self._identities[gid] = IdentityState(gid, frame, obs.map_xy, None)
        return gid

    def _join(self, frame: int, obs: Observation, gid: int) -> None:
        key = (obs.camera_id, obs.track_id)
        self._by_track[key] = gid
        self._joined[key] = frame
        self._apart.pop(key, None)
        self._observe(self._identities[gid], frame, obs)

    def _split(self, frame: int, observations: list[Observation]) -> None:
        """Split off a track that keeps standing far from its identity's other views."""
        cfg = self.config
        # When each identity's tracks of this frame took their id, per camera.
        joined_now: dict[int, list[tuple[str, int]]] = {}
        for o in observations:
            key = (o.camera_id, o.track_id)
            joined_now.setdefault(self._by_track[key], []).append((o.camera_id, self._joined[key]))
        for obs in observations:
            key = (obs.camera_id, obs.track_id)
            ident = self._identities.get(self._by_track[key])
            others = [xy for cam, xy in ident.now_xy.items() if cam != obs.camera_id and xy] if ident else []
            if obs.map_xy is None or not others:
                self._apart.pop(key, None)
                continue
            # Only the later of two disagreeing tracks is the suspect.
            mine = self._joined[key]
            if not any(j <= mine for cam, j in joined_now[ident.global_id] if cam != obs.camera_id):
                continue
            dist = min(float(np.hypot(obs.map_xy[0] - x, obs.map_xy[1] - y)) for x, y in others)
            self._apart[key] = self._apart.get(key, 0) + 1 if dist > 2 * cfg.position_tolerance_m else 0
            if self._apart[key] >= cfg.split_after_frames:
                del ident.now_xy[obs.camera_id]
                self._join(frame, obs, self._new_identity(frame, obs))

    def _review(self, frame: int, known: list[Observation]) -> None:
        """Move a track to the identity its recent crops resemble clearly better than its own.

        Two people who pass close in one view often come out of it with their tracks
        swapped or one track on the wrong person, while the IoU match never broke. Their
        identities were learnt before, often in other cameras, so comparing the track's
        recent crops with every identity that could be standing there finds the swap.
        """
        cfg = self.config
        gallery: tuple[list[IdentityState], np.ndarray] | None = None
        for obs in known:
            if obs.crop is None:
                continue
            key = (obs.camera_id, obs.track_id)
            _, previous = self._recent.get(key, (frame, None))
            m = cfg.review_momentum
            recent = obs.crop if previous is None else m * previous + (1 - m) * obs.crop
            recent = recent / max(float(np.linalg.norm(recent)), 1e-9)
            self._recent[key] = (frame, recent)
            own = self._identities.get(self._by_track[key])
            if own is None or own.embedding is None:
                continue
            if gallery is None:  # one matrix product per crop, however large the gallery
                idents = [i for i in self._identities.values() if i.embedding is not None]
                gallery = idents, np.stack([i.embedding for i in idents])
            idents, embeddings = gallery
            costs = calibrated_distance(1.0 - embeddings @ recent, cfg.reid_same_distance, cfg.reid_different_distance)
            best, bar = None, cfg.appearance_cost(recent, own.embedding) - cfg.review_margin
            below = np.flatnonzero(costs < bar)  # sort only the candidates, not the whole gallery
            for i in below[np.argsort(costs[below], kind="stable")]:
                ident = idents[i]
                if (
                    ident is not own
                    and obs.camera_id not in ident.now_xy
                    and np.isfinite(self._geometry(frame, obs, ident))
                ):
                    best = ident.global_id
                    break
            if best is None:
                self._doubt.pop(key, None)
                continue
            favoured, times = self._doubt.get(key, (best, 0))
            times = times + 1 if favoured == best else 1
            self._doubt[key] = (best, times)
            if times >= cfg.review_after:
                del self._doubt[key]
                own.now_xy.pop(obs.camera_id, None)
                self._join(frame, obs, best)
                gallery = None  # the join moved an embedding
        self._review_swaps(frame, known)
        # Tracks unseen for the time scale are over (or someone else when they come back).
        horizon = frame - cfg.time_scale_s * cfg.fps
        self._recent = {k: v for k, v in self._recent.items() if v[0] >= horizon}
        self._doubt = {k: v for k, v in self._doubt.items() if k in self._recent}
        self._swaps = {p: n for p, n in self._swaps.items() if p[0] in self._recent and p[1] in self._recent}

    def _review_swaps(self, frame: int, known: list[Observation]) -> None:
        """Swap the identities of two tracks in one camera whose recent crops each favour the other's.

        Two people crossing in a view can come out on each other's tracks; then neither
        identity is free in that camera, so :meth:`_review` alone cannot undo it.
        """
        cfg = self.config
        fresh = {(o.camera_id, o.track_id) for o in known if o.crop is not None}
        by_camera: dict[str, list[Observation]] = {}
        for o in known:
            by_camera.setdefault(o.camera_id, []).append(o)
        pairs = ((a, b) for same in by_camera.values() for i, a in enumerate(same) for b in same[i + 1 :])
        for a, b in pairs:
            ka, kb = (a.camera_id, a.track_id), (b.camera_id, b.track_id)
            # Judged only when a new crop came in, so one look is not counted twice.
            if not {ka, kb} & fresh or not {ka, kb} <= self._recent.keys():
                continue
            x, y = self._identities.get(self._by_track[ka]), self._identities.get(self._by_track[kb])
            if x is None or y is None or x.embedding is None or y.embedding is None:
                continue
            ra, rb = self._recent[ka][1], self._recent[kb][1]
            kept = cfg.appearance_cost(ra, x.embedding) + cfg.appearance_cost(rb, y.embedding)
            swapped = cfg.appearance_cost(ra, y.embedding) + cfg.appearance_cost(rb, x.embedding)
            pair = (ka, kb)
            if swapped >= kept - 2 * cfg.review_margin:
                self._swaps.pop(pair, None)
                continue
            self._swaps[pair] = self._swaps.get(pair, 0) + 1
            if self._swaps[pair] >= cfg.review_after:
                del self._swaps[pair]
                self._join(frame, a, y.global_id)
                self._join(frame, b, x.global_id)

    def _geometry(self, frame: int, obs: Observation, ident: IdentityState) -> float:
        """Map distance from the identity over how far it may be, 0..1; inf when out of reach.

        Against the identity's positions in other cameras this frame when there are any (two
        views of one person must agree), else against where it was last seen, with walking
        speed over the time since. Neutral (0.5) when either side has no map position.
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

    def _merge(self, observations: list[Observation]) -> None:
        """Fold together two identities that keep standing on one spot in different cameras."""
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
                alike = (
                    ia.embedding is None or ib.embedding is None or cfg.appearance_cost(ia.embedding, ib.embedding) < 1
                )
                if dist <= cfg.position_tolerance_m / 2 and alike:
                    together[(a, b)] = self._together.get((a, b), 0) + 1
        self._together = together
        for (a, b), n in sorted(together.items()):
            if n >= cfg.merge_after_frames and a in self._identities and b in self._identities:
                self._fold(b, into=a)

    def _fold(self, gid: int, into: int) -> None:
        gone, kept = self._identities.pop(gid), self._identities[into]
        self.folded = {g: into if k == gid else k for g, k in self.folded.items()} | {gid: into}
        for key, g in self._by_track.items():
            if g == gid:
                self._by_track[key] = into
        kept.now_xy.update(gone.now_xy)
        if kept.embedding is None:
            kept.embedding = gone.embedding
        self._together = {pair: n for pair, n in self._together.items() if gid not in pair}

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
            app = cfg.appearance_cost(obs.embedding, ident.embedding)
        stale = 0.0 if ident.now_xy else min(1.0, max(0.0, dt - 1.0 / cfg.fps) / cfg.time_scale_s)
        total = cfg.geometry_weight + cfg.appearance_weight + cfg.time_weight
        return (cfg.geometry_weight * geo + cfg.appearance_weight * app + cfg.time_weight * stale) / total

    def _observe(self, ident: IdentityState, frame: int, obs: Observation) -> None:
        ident.now_xy[obs.camera_id] = obs.map_xy
        ident.last_frame = max(ident.last_frame, frame)
        ident.last_camera = obs.camera_id
        if obs.map_xy is not None:
            ident.last_xy = obs.map_xy
        if obs.embedding is not None:
            if ident.embedding is None:
                ident.embedding = obs.embedding
            else:
                m = self.config.embedding_momentum
                mixed = m * ident.embedding + (1 - m) * obs.embedding
                ident.embedding = mixed / max(float(np.linalg.norm(mixed)), 1e-9)

    def _forget(self, frame: int, active: set[tuple[str, int]]) -> None:
        """Drop identities unseen for ``max_gap_s`` and, past ``max_identities``, the stalest."""
        horizon = frame - self.config.max_gap_s * self.config.fps
        keep = [i for i in self._identities.values() if i.last_frame >= horizon]
        if len(keep) > self.config.max_identities:  # sorted only when over the bound
            keep = sorted(keep, key=lambda i: -i.last_frame)[: self.config.max_identities]
        if len(keep) == len(self._identities):
            return
        self._identities = {i.global_id: i for i in keep}
        # A forgotten identity's ended tracks go too; a live track keeps its id.
        self._by_track = {k: g for k, g in self._by_track.items() if g in self._identities or k in active}
        self._joined = {k: f for k, f in self._joined.items() if k in self._by_track}
