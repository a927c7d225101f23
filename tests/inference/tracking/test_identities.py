import numpy as np

from spoton_inference.tracking.appearance import ReidCalibration
from spoton_inference.tracking.identities import AssociationConfig, GlobalIdentities, Observation


def _unit(v: list[float]) -> np.ndarray:
    a = np.asarray(v, np.float32)
    return a / np.linalg.norm(a)


def test_same_spot_in_two_cameras_is_one_person_and_far_apart_is_two():
    g = GlobalIdentities()
    ids = g.assign(0, [Observation("c1", 1, (2.0, 2.0), None, True), Observation("c1", 2, (9.0, 2.0), None, True)])
    ids2 = g.assign(1, [Observation("c2", 5, (2.3, 2.1), None, True), Observation("c2", 6, (9.2, 1.9), None, True)])
    assert ids2[("c2", 5)] == ids[("c1", 1)]
    assert ids2[("c2", 6)] == ids[("c1", 2)]
    assert g.num_identities == 2


def test_two_tracks_in_one_camera_never_share_an_identity():
    g = GlobalIdentities()
    g.assign(0, [Observation("c1", 1, (2.0, 2.0), None, True)])
    ids = g.assign(1, [Observation("c1", 1, (2.0, 2.0), None, False), Observation("c1", 2, (2.1, 2.0), None, True)])
    assert ids[("c1", 1)] != ids[("c1", 2)]


def test_walking_speed_gates_a_jump():
    g = GlobalIdentities(AssociationConfig(fps=10))
    first = g.assign(0, [Observation("c1", 1, (0.0, 0.0), None, True)])[("c1", 1)]
    # 1 frame later, 8 m away: nobody walks that fast
    jumped = g.assign(1, [Observation("c2", 1, (8.0, 0.0), None, True)])[("c2", 1)]
    assert jumped != first


def test_appearance_breaks_a_geometric_tie():
    g = GlobalIdentities()
    red, blue = _unit([1, 0, 0]), _unit([0, 1, 0])
    ids = g.assign(0, [Observation("c1", 1, (5.0, 5.0), red, True), Observation("c1", 2, (5.4, 5.0), blue, True)])
    later = g.assign(1, [Observation("c2", 9, (5.4, 5.0), red, True), Observation("c2", 8, (5.0, 5.0), blue, True)])
    assert later[("c2", 9)] == ids[("c1", 1)]
    assert later[("c2", 8)] == ids[("c1", 2)]


def test_emitted_ids_are_never_renumbered():
    g = GlobalIdentities()
    a = g.assign(0, [Observation("c1", 1, (1.0, 1.0), None, True)])[("c1", 1)]
    for f in range(1, 20):
        assert g.assign(f, [Observation("c1", 1, (1.0 + f * 0.1, 1.0), None, False)])[("c1", 1)] == a


def test_hand_over_between_views_that_do_not_overlap():
    g = GlobalIdentities(AssociationConfig(fps=10))
    gid = g.assign(0, [Observation("c1", 1, (5.0, 2.0), None, True)])[("c1", 1)]
    for f in range(1, 10):  # walks out of c1's view at 1 m/s
        g.assign(f, [Observation("c1", 1, (5.0 + 0.1 * f, 2.0), None, False)])
    # 1.5 s later, 1.5 m further on, in c2: the same person
    assert g.assign(25, [Observation("c2", 3, (7.4, 2.0), None, True)])[("c2", 3)] == gid


def test_re_entry_after_leaving_every_view_is_recognised_by_appearance():
    g = GlobalIdentities(AssociationConfig(fps=10, max_gap_s=60))
    red, blue = _unit([1, 0, 0]), _unit([0, 1, 0])
    ids = g.assign(0, [Observation("c1", 1, (1.0, 1.0), red, True), Observation("c1", 2, (9.0, 1.0), blue, True)])
    # 20 s later both come back through the same door, blue first
    back = g.assign(200, [Observation("c2", 5, (5.0, 8.0), blue, True)])
    assert back[("c2", 5)] == ids[("c1", 2)]
    again = g.assign(201, [Observation("c2", 5, (5.0, 8.0), None, False), Observation("c2", 6, (4.0, 8.0), red, True)])
    assert again[("c2", 6)] == ids[("c1", 1)]


def test_an_identity_unseen_for_longer_than_max_gap_is_forgotten():
    g = GlobalIdentities(AssociationConfig(fps=10, max_gap_s=5))
    red = _unit([1, 0, 0])
    first = g.assign(0, [Observation("c1", 1, (1.0, 1.0), red, True)])[("c1", 1)]
    g.assign(10, [])
    assert [i.global_id for i in g.gallery] == [first]
    later = g.assign(100, [Observation("c1", 2, (1.0, 1.0), red, True)])[("c1", 2)]
    assert later != first
    assert [i.global_id for i in g.gallery] == [later]


def test_the_gallery_is_bounded_in_size_keeping_the_most_recent():
    g = GlobalIdentities(AssociationConfig(fps=10, max_identities=3))
    for f in range(6):  # six people, each seen once, far apart
        g.assign(f, [Observation("c1", f + 1, (20.0 * f, 0.0), None, True)])
    assert [i.global_id for i in g.gallery] == [6, 5, 4]
    assert g.num_identities == 6


def test_look_alikes_are_told_apart_by_where_they_are():
    g = GlobalIdentities()
    grey = _unit([1, 1, 1])
    ids = g.assign(0, [Observation("c1", 1, (2.0, 2.0), grey, True), Observation("c1", 2, (6.0, 2.0), grey, True)])
    other = g.assign(1, [Observation("c2", 8, (6.1, 2.2), grey, True), Observation("c2", 9, (2.2, 1.9), grey, True)])
    assert other[("c2", 9)] == ids[("c1", 1)]
    assert other[("c2", 8)] == ids[("c1", 2)]


def test_two_views_must_agree_on_where_a_person_is_now():
    g = GlobalIdentities()
    red = _unit([1, 0, 0])
    a = g.assign(0, [Observation("c1", 1, (2.0, 2.0), red, True)])[("c1", 1)]
    # same look, same moment, 3 m away from where c1 sees them: someone else
    b = g.assign(1, [Observation("c1", 1, (2.0, 2.0), None, False), Observation("c2", 4, (5.0, 2.0), red, True)])
    assert b[("c2", 4)] != a


def test_the_same_distance_decides_differently_under_another_calibration():
    """A distance typical of one person for one embedder is typical of two for another."""
    red, reddish = _unit([1, 0, 0]), _unit([0.8, 0.6, 0])  # cosine distance 0.2
    for calibration, same in ((ReidCalibration(0.15, 0.5), True), (ReidCalibration(0.02, 0.1), False)):
        g = GlobalIdentities(AssociationConfig(fps=10, calibration=calibration))
        first = g.assign(0, [Observation("c1", 1, (1.0, 1.0), red, True)])[("c1", 1)]
        # 2 s later, re-entering far from any other view: appearance decides
        back = g.assign(20, [Observation("c2", 4, (3.0, 1.0), reddish, True)])[("c2", 4)]
        assert (back == first) is same


def test_two_identities_that_keep_standing_on_one_spot_merge_into_the_older():
    g = GlobalIdentities(AssociationConfig(merge_after_frames=3))
    red = _unit([1, 0, 0])
    # c2's view of the person first lands 1.5 m off (a bad foot point), so it starts its own id
    a = g.assign(0, [Observation("c1", 1, (2.0, 2.0), red, True)])[("c1", 1)]
    b = g.assign(1, [Observation("c1", 1, (2.0, 2.0), None, False), Observation("c2", 7, (3.5, 2.0), red, True)])
    assert b[("c2", 7)] != a
    ids = []
    for f in range(2, 7):
        ids.append(
            g.assign(f, [Observation("c1", 1, (2.0, 2.0), None, False), Observation("c2", 7, (2.1, 2.0), None, False)])
        )
    assert ids[0][("c2", 7)] == b[("c2", 7)]  # not on one frame's evidence
    assert ids[-1][("c2", 7)] == a  # the younger folds into the older
    assert ids[-1][("c1", 1)] == a


def _one_id_per_camera(ids: dict[tuple[str, int], int]) -> bool:
    held = [(cam, gid) for (cam, _), gid in ids.items()]
    return len(held) == len(set(held))


def test_a_lost_track_coming_back_never_shares_its_identity_with_its_successor():
    """Track 1 goes unseen (lost by its camera's tracker) and track 2 takes the person's identity
    on the spot; when track 1 is found again both are seen in one frame: not under one id."""
    g = GlobalIdentities()
    gid = g.assign(0, [Observation("c1", 1, (2.0, 2.0), None, True)])[("c1", 1)]
    assert g.assign(4, [Observation("c1", 2, (2.1, 2.0), None, True)])[("c1", 2)] == gid  # the hand-over
    both = g.assign(5, [Observation("c1", 1, (2.0, 2.0), None, False), Observation("c1", 2, (2.1, 2.0), None, False)])
    assert _one_id_per_camera(both)
    assert both[("c1", 2)] == gid  # the identity stays with the track that holds it now


def test_a_merge_never_leaves_one_identity_two_tracks_in_one_camera():
    """Identity a is held by c2's track 5 and by c1's track 1, which is lost; c1's new track 3
    starts identity b on c2's spot and b folds into a. When track 1 is found again, a has two
    tracks in c1 unless the merge settled which one holds it."""
    g = GlobalIdentities(AssociationConfig(merge_after_frames=3))
    first = g.assign(0, [Observation("c1", 1, (2.0, 2.0), None, True), Observation("c2", 5, (2.1, 2.0), None, True)])
    a = first[("c1", 1)]
    assert first[("c2", 5)] == a
    b = g.assign(1, [Observation("c2", 5, (2.1, 2.0), None, False), Observation("c1", 3, (3.5, 2.0), None, True)])
    assert b[("c1", 3)] != a  # 1.4 m off where c2 sees a now
    for f in range(2, 6):
        merged = g.assign(
            f, [Observation("c2", 5, (2.1, 2.0), None, False), Observation("c1", 3, (2.2, 2.0), None, False)]
        )
    assert merged[("c1", 3)] == a
    back = [Observation(c, t, xy, None, False) for c, t, xy in (("c1", 1, (5.0, 2.0)), ("c1", 3, (2.2, 2.0)))]
    assert _one_id_per_camera(g.assign(6, [*back, Observation("c2", 5, (2.1, 2.0), None, False)]))
