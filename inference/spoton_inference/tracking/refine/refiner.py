"""The refinement pass for recorded video: a window of online tracks in, refined tracks out.

The online pass decides identities frame by frame. Recorded video need not: after each
window (a sub-video batch, or a slice of one), :class:`Refiner` takes every camera's
sightings (:class:`~.record.WindowRecord`) and re-decides them with the whole window in view,
in four passes:

1. **cut** each online track where its identity may have changed (:mod:`.tracklets`);
2. **link** each camera's tracklets into chains (:mod:`.linking`), continuing the people of
   earlier windows;
3. **group** all cameras' chains into people (:mod:`.identities`), continuing earlier
   windows' identities;
4. **fill** each chain's gaps and smooth its boxes (:mod:`.fill`), and give it ids.

Ids follow the online ones wherever they can: a chain takes the online local id it carried
most, a group the online global id it carried most, unless that id already stands for
someone else; then it gets a fresh one. An id once given out keeps meaning one person for
the rest of the task. What carries from one window to the next is bounded: the identities
seen within ``IdentityConfig.max_gap_s``, each with its last sightings per camera.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Callable, Mapping

import numpy as np
from scipy.optimize import linear_sum_assignment

from spoton_inference.tracking.appearance import Feature
from spoton_inference.tracking.calibration import ReidFit
from spoton_inference.tracking.identities import IdentityState
from spoton_inference.tracking.refine.fill import FillConfig, detection_snapper, fill_chain
from spoton_inference.tracking.refine.identities import ChainView, IdentityConfig, cluster_chains
from spoton_inference.tracking.refine.linking import LinkConfig, link_tracklets
from spoton_inference.tracking.refine.record import WindowRecord
from spoton_inference.tracking.refine.tracklets import Tracklet, TrackletConfig, split_tracks

# Image points (Nx2 foot points) -> map points (Nx2); None for a camera without a homography.
Projector = Callable[[np.ndarray], np.ndarray]
# Identities kept across windows at most (the least recently seen go first).
MAX_CARRIED_IDENTITIES = 1000
# Crops a chain's end keeps for linking in the next window.
TAIL_CROPS = 8


@dataclasses.dataclass(frozen=True, slots=True)
class RefineConfig:
    tracklets: TrackletConfig = dataclasses.field(default_factory=TrackletConfig)
    linking: LinkConfig = dataclasses.field(default_factory=LinkConfig)
    identities: IdentityConfig = dataclasses.field(default_factory=IdentityConfig)
    fill: FillConfig = dataclasses.field(default_factory=FillConfig)


@dataclasses.dataclass(frozen=True, slots=True)
class RefinedTrack:
    """One person in one camera over a window, one box per frame."""

    camera_id: str
    track_id: int
    global_id: int
    frames: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray  # 0 where the box was filled in
    map_xy: np.ndarray  # Nx2, NaN without a homography


@dataclasses.dataclass(slots=True)
class _Carried:
    """An identity of earlier windows: its last sightings per camera and its appearance."""

    global_id: int
    last_frame: int
    feature_sum: np.ndarray | None
    tails: dict[str, Tracklet]  # camera -> last sightings, anchored with (local id, global id)


class Refiner:
    """Refines one task's windows in order; holds what carries from one window to the next."""

    def __init__(self, fps: float, projectors: Mapping[str, Projector | None], config: RefineConfig | None = None):
        self.fps = fps
        self.config = config or RefineConfig()
        self._projectors = dict(projectors)
        self._carried: dict[int, _Carried] = {}
        # Refined ids given out: per camera local id -> global id (and back), and global ids.
        self._local_owner: dict[str, dict[int, int]] = collections.defaultdict(dict)
        self._local_of: dict[tuple[str, int], int] = {}
        self._globals: set[int] = set()
        self._next_local: dict[str, int] = collections.defaultdict(lambda: 1)
        self._next_global = 1
        # The identities of the last window refined (for the gallery and the history).
        self.identities: list[IdentityState] = []

    @property
    def num_identities(self) -> int:
        """Refined global ids given out so far."""
        return len(self._globals)

    def refine(self, record: WindowRecord, fit: ReidFit | None) -> list[RefinedTrack]:
        """The window's refined tracks (see the module docs)."""
        cfg = self.config
        if record.first_frame is None:
            return []
        chains: list[list[Tracklet]] = []
        for camera_id in record.camera_ids:
            sightings = record.sightings(camera_id)
            if len(sightings):
                self._next_local[camera_id] = max(self._next_local[camera_id], int(sightings.track_ids.max()) + 1)
                self._next_global = max(self._next_global, int(sightings.global_ids.max()) + 1)
            tracklets = split_tracks(camera_id, sightings, cfg.tracklets, self.fps, fit)
            tails = [c.tails[camera_id] for c in self._carried.values() if camera_id in c.tails]
            reach = record.first_frame - cfg.linking.max_gap_s * self.fps
            tracklets += [t for t in tails if t.end >= reach]
            chains += [c for c in link_tracklets(tracklets, cfg.linking, self.fps, fit) if c[-1].anchor is None]
        views = [self._view(chain) for chain in chains]
        anchors = {c.global_id: c for c in self._carried.values()}
        ghost_views = [
            ChainView(t.camera_id, t.frames, t.map_xy, _unit(c.feature_sum), c.global_id)
            for c in anchors.values()
            for t in c.tails.values()
        ]
        labels = cluster_chains(views + ghost_views, cfg.identities, self.fps, fit)
        chain_labels = labels[: len(views)]
        group_gid = self._group_ids(chains, chain_labels, labels, views + ghost_views)
        # One person in one camera is one track: their chains there (which never share a
        # frame, see .identities) are filled as one and share one local id.
        people: dict[tuple[str, int], list[list[Tracklet]]] = collections.defaultdict(list)
        for chain, label in zip(chains, chain_labels, strict=True):
            people[(chain[0].camera_id, group_gid[label])].append(chain)
        out, pieces = [], []
        for (camera_id, gid), mine in people.items():
            track_id = self._local_id(camera_id, gid, mine)
            out.append(self._fill(camera_id, track_id, gid, mine, record))
            pieces.append(sorted((t for chain in mine for t in chain), key=lambda t: t.start))
        self._carry(out, pieces, record.last_frame)
        self.identities = self._identities({t.global_id for t in out}, out)
        return out

    def _identities(self, gids: set[int], tracks: list[RefinedTrack]) -> list[IdentityState]:
        """The refined identities seen in the window: last sighting, last camera, mean appearance."""
        states = {}
        for track in sorted(tracks, key=lambda t: int(t.frames[-1])):
            carried = self._carried.get(track.global_id)
            known = np.flatnonzero(~np.isnan(track.map_xy[:, 0]))
            xy = tuple(float(v) for v in track.map_xy[known[-1]]) if len(known) else None
            feature = _unit(carried.feature_sum) if carried is not None else None
            states[track.global_id] = IdentityState(
                track.global_id,
                int(track.frames[-1]),
                xy,  # type: ignore[arg-type]
                Feature(feature) if feature is not None else None,
                last_camera=track.camera_id,
            )
        return [states[g] for g in sorted(gids)]

    def _view(self, chain: list[Tracklet]) -> ChainView:
        live = [t for t in chain if t.anchor is None]
        continues = chain[0].anchor[1] if chain[0].anchor is not None else None
        crops = [e for t in live for e in t.embeddings]
        feature = _unit(np.sum(crops, axis=0)) if crops else None
        return ChainView(
            chain[0].camera_id,
            np.concatenate([t.frames for t in live]),
            np.concatenate([t.map_xy for t in live]),
            feature,
            anchor=None,
            continues=continues,
        )

    def _group_ids(
        self, chains: list[list[Tracklet]], chain_labels: list[int], labels: list[int], views: list[ChainView]
    ) -> dict[int, int]:
        """Global id per group: its anchor's, else the online id it carried most, else a fresh one."""
        group_gid: dict[int, int] = {}
        for label, view in zip(labels, views, strict=True):
            if view.anchor is not None:
                group_gid[label] = view.anchor
        votes: dict[int, collections.Counter[int]] = collections.defaultdict(collections.Counter)
        for chain, label in zip(chains, chain_labels, strict=True):
            if label in group_gid:
                continue
            for t in chain:
                if t.anchor is None and t.online_global > 0:
                    votes[label][t.online_global] += len(t.frames)
        taken = self._globals | set(group_gid.values())
        chosen = _majority(votes, taken)
        for label in sorted(set(chain_labels)):
            if label not in group_gid:
                group_gid[label] = chosen.get(label) or self._fresh_global()
            self._globals.add(group_gid[label])
        return group_gid

    def _local_id(self, camera_id: str, gid: int, chains: list[list[Tracklet]]) -> int:
        """The person's local id in this camera: the one they had before, else the online id
        their chains carried most that no one else has had, else a fresh one."""
        known = self._local_of.get((camera_id, gid))
        if known is not None:
            return known
        owner = self._local_owner[camera_id]
        votes = collections.Counter(
            t.online_track for chain in chains for t in chain if t.anchor is None for _ in range(len(t.frames))
        )
        local = next((i for i, _ in votes.most_common() if i not in owner), None)
        if local is None:
            local = self._next_local[camera_id]
            self._next_local[camera_id] += 1
        owner[local] = gid
        self._local_of[(camera_id, gid)] = local
        return local

    def _fill(
        self, camera_id: str, track_id: int, gid: int, chains: list[list[Tracklet]], record: WindowRecord
    ) -> RefinedTrack:
        snap = detection_snapper(record.free_detections(camera_id), self.config.fill.snap_iou)
        # One person's sightings in one camera, all their chains' together in frame order
        # (chains never share a frame, but may take turns: one in the other's gap), filled as
        # one: a gap is filled only where no chain of theirs has a box.
        live = [t for chain in chains for t in chain if t.anchor is None]
        frames = np.concatenate([t.frames for t in live])
        order = np.argsort(frames, kind="stable")
        boxes = np.concatenate([t.boxes for t in live])[order]
        scores = np.concatenate([t.scores for t in live])[order]
        filled = fill_chain(frames[order], boxes, scores, self.config.fill, self.fps, snap)
        project = self._projectors.get(camera_id)
        if project is not None:
            feet = np.stack([(filled.boxes[:, 0] + filled.boxes[:, 2]) / 2, filled.boxes[:, 3]], axis=1)
            map_xy = np.asarray(project(feet), np.float64)
        else:
            map_xy = np.full((len(filled.frames), 2), np.nan)
        return RefinedTrack(camera_id, track_id, gid, filled.frames, filled.boxes, filled.scores, map_xy)

    def _carry(self, tracks: list[RefinedTrack], chains: list[list[Tracklet]], last_frame: int) -> None:
        span = self.config.linking.end_span
        for track, chain in zip(tracks, chains, strict=True):
            carried = self._carried.setdefault(track.global_id, _Carried(track.global_id, -1, None, {}))
            carried.last_frame = max(carried.last_frame, int(track.frames[-1]))
            crops = [e for t in chain if t.anchor is None for e in t.embeddings]
            if crops:
                total = np.sum(crops, axis=0)
                carried.feature_sum = total if carried.feature_sum is None else carried.feature_sum + total
            observed = track.scores > 0
            frames, boxes, map_xy = track.frames[observed], track.boxes[observed], track.map_xy[observed]
            if not len(frames):
                continue
            previous = carried.tails.get(track.camera_id)
            if previous is None or previous.end < frames[-1]:
                # The chain's end, under its online track id (the online tracker may carry the
                # person on into the next window) with its last crops, to link to next time.
                carried.tails[track.camera_id] = Tracklet(
                    track.camera_id,
                    frames[-span:],
                    boxes[-span:],
                    track.scores[observed][-span:],
                    map_xy[-span:],
                    online_track=chain[-1].online_track,
                    online_global=track.global_id,
                    embeddings=crops[-TAIL_CROPS:],
                    anchor=(track.track_id, track.global_id),
                )
        horizon = last_frame - self.config.identities.max_gap_s * self.fps
        kept = sorted((c for c in self._carried.values() if c.last_frame >= horizon), key=lambda c: -c.last_frame)
        self._carried = {c.global_id: c for c in kept[:MAX_CARRIED_IDENTITIES]}

    def _fresh_global(self) -> int:
        while self._next_global in self._globals:
            self._next_global += 1
        gid = self._next_global
        self._next_global += 1
        return gid


def _majority(
    votes: Mapping[int, collections.Counter[int]],
    taken: set[int],
    allowed: Callable[[int, int], bool] | None = None,
) -> dict[int, int]:
    """Each key's id by the most votes, one key per id (Hungarian over vote counts), none of ``taken``."""
    keys = list(votes)
    ids = sorted({i for c in votes.values() for i in c if i not in taken})
    if not keys or not ids:
        return {}
    weight = np.zeros((len(keys), len(ids)))
    for r, k in enumerate(keys):
        for c, i in enumerate(ids):
            if allowed is None or allowed(k, i):
                weight[r, c] = votes[k].get(i, 0)
    rows, cols = linear_sum_assignment(-weight)
    return {keys[r]: ids[c] for r, c in zip(rows, cols, strict=True) if weight[r, c] > 0}


def _unit(v: np.ndarray | None) -> np.ndarray | None:
    if v is None:
        return None
    return v / max(float(np.linalg.norm(v)), 1e-9)
