"""Grouping every camera's chains into people: global identities with the whole window in view.

A *chain* is one person's linked tracklets in one camera (:mod:`.linking`). Two chains are
scored for being one person on what the floor plan and time allow, and on appearance:

- **seen at the same time in two cameras**: their map positions on the frames both see
  must agree; the median distance decides (within ``tolerance_m``: the closer, the higher;
  beyond ``2 x tolerance_m``: never one person);
- **seen one after the other** (in two cameras, or twice in one): the later must start
  within walking reach of where the earlier ended (``tolerance_m`` plus ``max_speed_mps``
  a second) and within ``max_gap_s``;
- **appearance**: the broad log-odds of their mean embeddings being one person
  (:meth:`~spoton_inference.tracking.calibration.ReidFit.broad_log_odds`: views from two
  cameras, or far apart in time, differ more than the crops the calibration was fitted on);
- **never one person**: two chains of one camera at the same time, or two views at the same
  time too far apart on the map.

Chains are then grouped by average-linkage agglomerative clustering that never joins two
groups holding a "never" pair, and stops when no two groups score above zero on average.
People carried over from an earlier window (*anchors*, with a global id already given out)
never merge with each other; a chain that its camera's linking continued from one of them
(``continues``) scores ``continuation_bonus`` more with that person, but may still go to
another when the views of this window say so.

Example:
    >>> import numpy as np
    >>> def chain(cam, frames, x):
    ...     f = np.array(frames)
    ...     return ChainView(cam, f, np.stack([np.full(len(f), x), np.zeros(len(f))], 1), None, None)
    >>> views = [chain("c1", range(0, 10), 1.0), chain("c2", range(5, 15), 1.2), chain("c2", range(0, 10), 6.0)]
    >>> cluster_chains(views, IdentityConfig(), fps=10, fit=None)
    [0, 0, 1]
"""

from __future__ import annotations

import dataclasses

import numpy as np

from spoton_inference.tracking.calibration import ReidFit


@dataclasses.dataclass(frozen=True, slots=True)
class IdentityConfig:
    # Two views of one person at one time agree on the map within this (metres).
    tolerance_m: float = 1.0
    # Walking speed that bounds where a person can reappear (metres per second).
    max_speed_mps: float = 2.0
    # The longest time between two sightings of one person that still links them.
    max_gap_s: float = 30.0
    # Without map positions, two chains of one camera are related here only this long apart or
    # more: closer in time, the camera's own linking (LinkConfig.max_gap_s) judged them on motion.
    same_camera_after_s: float = 4.0
    # Score weights: agreement of simultaneous views, reach of successive ones, appearance
    # log-odds, and a penalty per second between successive sightings.
    together_weight: float = 3.0
    successive_weight: float = 1.0
    appearance_weight: float = 1.0
    gap_penalty_per_s: float = 0.05
    # Frames of overlap for full confidence in simultaneous agreement.
    together_frames: int = 5
    # Added to the score of a chain and the earlier person its camera's linking continued.
    continuation_bonus: float = 2.0


@dataclasses.dataclass(frozen=True, slots=True)
class ChainView:
    """What clustering needs of a chain."""

    camera_id: str
    frames: np.ndarray  # int64, increasing
    map_xy: np.ndarray  # Nx2, NaN where unknown
    feature: np.ndarray | None
    # Set on the views of people given a global id in an earlier window (their last sightings).
    anchor: int | None
    # The global id of the earlier person this chain continues in its camera (linking joined
    # it to their last sightings), if any: a strong vote, not a decision.
    continues: int | None = None


def cluster_chains(chains: list[ChainView], config: IdentityConfig, fps: float, fit: ReidFit | None) -> list[int]:
    """A group label per chain (0, 1, ...; views with one anchor share its group)."""
    n = len(chains)
    if n == 0:
        return []
    score, related, never = pair_scores(chains, config, fps, fit)
    # Group state: sum and count of member-pair scores, and whether any pair forbids it.
    total = np.where(related, score, 0.0)
    count = related.astype(np.float64)
    label = np.arange(n)
    alive = np.ones(n, dtype=bool)
    anchor = np.array([c.anchor if c.anchor is not None else -1 for c in chains])
    # The views of one earlier person start as one group.
    for gid in set(anchor[anchor >= 0].tolist()):
        members = np.flatnonzero(anchor == gid)
        for j in members[1:]:
            _merge(members[0], j, total, count, never, label, alive)
    anchored = np.array([anchor[label == i].max(initial=-1) >= 0 for i in range(n)])
    while True:
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(count > 0, total / count, -np.inf)
        mean[never | ~alive[:, None] | ~alive[None, :]] = -np.inf
        np.fill_diagonal(mean, -np.inf)
        mean[np.ix_(anchored, anchored)] = -np.inf
        best = int(np.argmax(mean))
        i, j = divmod(best, n)
        if not np.isfinite(mean[i, j]) or mean[i, j] <= 0:
            break
        _merge(i, j, total, count, never, label, alive)
        anchored[i] |= anchored[j]
    groups = {g: k for k, g in enumerate(dict.fromkeys(label.tolist()))}
    return [groups[g] for g in label.tolist()]


def _merge(
    i: int, j: int, total: np.ndarray, count: np.ndarray, never: np.ndarray, label: np.ndarray, alive: np.ndarray
) -> None:
    """Fold group j into group i."""
    for m in (total, count):
        m[i, :] += m[j, :]
        m[:, i] += m[:, j]
        m[j, :] = m[:, j] = 0
    never[i, :] |= never[j, :]
    never[:, i] |= never[:, j]
    label[label == j] = i
    alive[j] = False


def pair_scores(
    chains: list[ChainView], config: IdentityConfig, fps: float, fit: ReidFit | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Score of every pair, whether the pair is related at all, and whether it is forbidden."""
    n = len(chains)
    score = np.zeros((n, n))
    related = np.zeros((n, n), dtype=bool)
    never = np.zeros((n, n), dtype=bool)
    first = np.array([c.frames[0] for c in chains])
    last = np.array([c.frames[-1] for c in chains])
    max_gap = config.max_gap_s * fps
    for i in range(n):
        # Chains further apart in time than max_gap_s are unrelated: skip them without a look.
        near = np.flatnonzero((first <= last[i] + max_gap) & (last >= first[i] - max_gap))
        for j in near[near > i]:
            s = _pair(chains[i], chains[j], config, fps, fit)
            if s is None:
                continue
            if s == -np.inf:
                never[i, j] = never[j, i] = True
            else:
                score[i, j] = score[j, i] = s
                related[i, j] = related[j, i] = True
    return score, related, never


def _pair(a: ChainView, b: ChainView, config: IdentityConfig, fps: float, fit: ReidFit | None) -> float | None:
    """-inf: never one person; None: nothing relates them; else the score."""
    score = _evidence(a, b, config, fps, fit)
    continued = (a.continues is not None and a.continues == b.anchor) or (
        b.continues is not None and b.continues == a.anchor
    )
    if continued and score is not None and score != -np.inf:
        return score + config.continuation_bonus
    return score


def _evidence(a: ChainView, b: ChainView, config: IdentityConfig, fps: float, fit: ReidFit | None) -> float | None:
    overlapping = a.frames[0] <= b.frames[-1] and b.frames[0] <= a.frames[-1]
    common, ia, ib = np.intersect1d(a.frames, b.frames, return_indices=True) if overlapping else ((), (), ())
    appearance = 0.0
    if fit is not None and a.feature is not None and b.feature is not None:
        appearance = config.appearance_weight * float(fit.broad_log_odds(1.0 - float(a.feature @ b.feature)))
    if len(common):
        if a.camera_id == b.camera_id:
            return -np.inf
        pa, pb = a.map_xy[ia], b.map_xy[ib]
        known = ~np.isnan(pa[:, 0]) & ~np.isnan(pb[:, 0])
        if not known.any():
            return appearance
        distance = float(np.median(np.linalg.norm(pa[known] - pb[known], axis=1)))
        if distance > 2 * config.tolerance_m:
            return -np.inf
        weight = config.together_weight * min(1.0, known.sum() / config.together_frames)
        return weight * (1.0 - distance / config.tolerance_m) + appearance
    # Never at the same time: the nearest moments of the two (chains may interleave, one in
    # the other's gap) must be within walking reach.
    ka, kb, gap = _nearest(a, b)
    gap_s = gap / fps
    if gap_s > config.max_gap_s:
        return None
    score = appearance - config.gap_penalty_per_s * gap_s
    if ka is None or kb is None:
        # No floor position to check walking reach by: two chains of one camera this close in
        # time were weighed by that camera's linking, on their image motion; leave them be.
        same_camera_soon = a.camera_id == b.camera_id and gap_s <= config.same_camera_after_s
        return None if same_camera_soon else score
    reach = config.tolerance_m + config.max_speed_mps * gap_s
    distance = float(np.linalg.norm(a.map_xy[ka] - b.map_xy[kb]))
    if distance > reach:
        return -np.inf
    return score + config.successive_weight * (1.0 - distance / reach)


def _nearest(a: ChainView, b: ChainView) -> tuple[int | None, int | None, int]:
    """The sightings of ``a`` and ``b`` closest in time among those with a map position
    (None, None without any), and the frames between the two chains' closest sightings."""
    order = np.searchsorted(b.frames, a.frames)
    before = np.clip(order - 1, 0, len(b.frames) - 1)
    after = np.clip(order, 0, len(b.frames) - 1)
    gaps = np.minimum(np.abs(a.frames - b.frames[before]), np.abs(a.frames - b.frames[after]))
    gap = int(gaps.min())
    known_a = np.flatnonzero(~np.isnan(a.map_xy[:, 0]))
    known_b = np.flatnonzero(~np.isnan(b.map_xy[:, 0]))
    if not len(known_a) or not len(known_b):
        return None, None, gap
    fa, fb = a.frames[known_a], b.frames[known_b]
    order = np.clip(np.searchsorted(fb, fa), 0, len(fb) - 1)
    candidates = np.stack([np.clip(order - 1, 0, len(fb) - 1), order], axis=1)
    distance = np.abs(fa[:, None] - fb[candidates])
    i, j = np.unravel_index(int(np.argmin(distance)), distance.shape)
    return int(known_a[i]), int(known_b[candidates[i, j]]), gap
