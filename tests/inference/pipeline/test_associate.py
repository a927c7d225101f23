import numpy as np

from spoton_inference.pipeline.associate import AssociationConfig, GlobalIdentities, Observation


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
