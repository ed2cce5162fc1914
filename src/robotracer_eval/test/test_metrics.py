import math

import numpy as np
import pytest

from robotracer_eval import metrics as m

INTR = m.Intrinsics(100.0, 100.0, 50.0, 50.0)


def test_intrinsics_from_3x3_and_4x4():
    k3 = [[100, 0, 50], [0, 90, 40], [0, 0, 1]]
    k4 = np.eye(4)
    k4[:3, :3] = k3
    assert m.Intrinsics.from_matrix(k3) == m.Intrinsics(100, 90, 50, 40)
    assert m.Intrinsics.from_matrix(k4) == m.Intrinsics(100, 90, 50, 40)
    with pytest.raises(ValueError, match='3x3 or 4x4'):
        m.Intrinsics.from_matrix([[1, 2], [3, 4]])
    with pytest.raises(ValueError, match='missing'):
        m.Intrinsics.from_matrix(None)


def test_resample_even_along_length_and_degenerate_cases():
    r = m.resample_by_arclength(np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0]]), 5)
    np.testing.assert_allclose(r, [[0, 0], [0.5, 0], [1, 0], [1, 0.5], [1, 1]])
    same = m.resample_by_arclength(np.array([[2.0, 3.0], [2.0, 3.0]]), 4)
    np.testing.assert_allclose(same, [[2, 3]] * 4)
    single = np.array([[1.0, 2.0]])
    np.testing.assert_allclose(m.resample_by_arclength(single, 100), single)


def test_frechet_known_values():
    p = np.array([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0]])
    assert m.discrete_frechet(p, p) == 0.0
    assert m.discrete_frechet(p, p + [0, 1]) == pytest.approx(1.0)
    # reversed traversal: Frechet sees the order, Hausdorff does not
    assert m.discrete_frechet(p, p[::-1]) == pytest.approx(2.0)
    assert m.hausdorff(p, p[::-1]) == 0.0
    # a detour: Frechet and Hausdorff are the detour's height
    q = np.array([[0.0, 0.0], [1.0, 3.0], [2.0, 0.0]])
    assert m.discrete_frechet(p, q) == pytest.approx(3.0)
    assert m.hausdorff(p, q) == pytest.approx(math.hypot(0, 3))


def test_frechet_matches_the_recursive_definition():
    rng = np.random.default_rng(3)
    for _ in range(5):
        p, q = rng.normal(size=(7, 2)), rng.normal(size=(5, 2))
        d = np.linalg.norm(p[:, None] - q[None], axis=2)
        ca = np.zeros_like(d)
        for i in range(len(p)):
            for j in range(len(q)):
                prev = [
                    ca[a, b]
                    for a, b in ((i - 1, j), (i - 1, j - 1), (i, j - 1))
                    if a >= 0 and b >= 0
                ]
                ca[i, j] = max(d[i, j], min(prev)) if prev else d[i, j]
        assert m.discrete_frechet(p, q) == pytest.approx(ca[-1, -1])


def test_rmse_is_euclidean_and_mae_per_coordinate():
    p = np.zeros((4, 2))
    q = np.tile([3.0, 4.0], (4, 1))
    rmse, mae = m.rmse_mae(p, q)
    assert rmse == pytest.approx(5.0)
    assert mae == pytest.approx(3.5)
    with pytest.raises(ValueError, match='aligned'):
        m.rmse_mae(np.zeros((2, 2)), np.zeros((3, 2)))


def test_issue_example_2d_path_metrics():
    gt_px = m.project(np.array([[0.0, 0.0, 1.0], [0.2, 0.0, 1.0]]), INTR)
    np.testing.assert_allclose(gt_px, [[50, 50], [70, 50]])
    zero = m.path_scores(gt_px, gt_px, scale=(100, 100))
    assert (zero.dfd, zero.hd, zero.rmse, zero.mae) == (0, 0, 0, 0)
    shifted = m.path_scores(gt_px + [0, 10], gt_px, scale=(100, 100))  # 100/1000 of H
    assert shifted.dfd == pytest.approx(0.1)
    assert shifted.hd == pytest.approx(0.1)
    assert shifted.rmse == pytest.approx(0.1)
    assert shifted.mae == pytest.approx(0.05)


def test_average_leaves_out_dfd_over_100():
    s = [m.PathScores(1, 1, 1, 1), m.PathScores(3, 3, 3, 3), m.PathScores(150, 1, 1, 1), None]
    avg = m.average_path_scores(s)
    assert avg['dfd'] == pytest.approx(2.0)
    assert avg['n_path'] == 2
    assert avg['n_outliers'] == 1
    assert m.average_path_scores([])['dfd'] is None


def test_projection_and_backprojection_round_trip():
    pts = np.array([[0.1, -0.2, 1.5], [0.0, 0.0, 2.0]])
    uv = m.project(pts, INTR)
    xyd = np.column_stack([uv[:, 0] / 100, uv[:, 1] / 100, pts[:, 2]])
    np.testing.assert_allclose(m.backproject(xyd, 100, 100, INTR), pts)
    assert np.all(np.isfinite(m.project(np.array([[1.0, 1.0, 0.0]]), INTR)))  # |Z| < 1e-6


def test_start_in_mask_rounds_to_the_nearest_pixel():
    mask = np.zeros((10, 10), np.uint8)
    mask[5, 5] = 1
    assert m.start_in_mask((5.3, 4.7), mask)
    assert not m.start_in_mask((5.7, 5.0), mask)
    assert not m.start_in_mask((-3, 5), mask)
    assert not m.start_in_mask((float('nan'), 5), mask)


def test_end_in_box_2d_uses_the_last_three_points():
    box = m.box_to_image([0.2, 0.0, 1.0], [0.2, 0.2, 0.2], np.eye(3), INTR)
    # corners at z 0.9 and 1.1: u from 50 + 100*0.1/1.1 to 50 + 100*0.3/0.9
    assert box[0] == pytest.approx(50 + 10 / 1.1)
    assert box[2] == pytest.approx(50 + 30 / 0.9)
    inside = (70.0, 50.0)
    outside = (10.0, 10.0)
    assert m.end_in_box_2d(np.array([inside, outside, outside]), box)
    assert not m.end_in_box_2d(np.array([inside, outside, outside, outside]), box)
    assert m.end_in_box_2d(np.array([outside, inside]), box)  # fewer than 3: the last one
    assert not m.end_in_box_2d(np.array([inside, outside]), box)


def test_point_to_box_distance_issue_example_and_rotation():
    c, e = [0.2, 0.0, 1.0], [0.2, 0.2, 0.2]
    assert m.point_to_box_distance([0.2, 0.0, 1.25], c, e, np.eye(3)) == pytest.approx(0.15)
    assert m.point_to_box_distance([0.25, 0.05, 1.05], c, e, np.eye(3)) == 0.0
    rz = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    long_box = [0.6, 0.1, 0.1]  # long along local x = camera y after the rotation
    assert m.point_to_box_distance([0.2, 0.25, 1.0], c, long_box, rz) == 0.0
    assert m.point_to_box_distance([0.5, 0.0, 1.0], c, long_box, rz) == pytest.approx(0.25)
    pred = np.array([[0, 0, 0], [5, 5, 5], [0.2, 0.0, 1.25], [3, 3, 3]], dtype=float)
    assert m.end_distance_3d(pred, c, e, np.eye(3)) == pytest.approx(0.15)


def test_start_distance_is_the_smaller_of_cloud_and_ground_truth():
    cloud = np.array([[0.0, 0.0, 1.0], [0.1, 0.0, 1.0]])
    assert m.start_distance_3d([0.1, 0.05, 1.0], cloud, [5, 5, 5]) == pytest.approx(0.05)
    assert m.start_distance_3d([2.0, 0.0, 1.0], cloud, [2.0, 0.03, 1.0]) == pytest.approx(0.03)
    with pytest.raises(ValueError, match='empty'):
        m.start_distance_3d([0, 0, 0], np.zeros((0, 3)), [0, 0, 0])


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra.numpy import arrays  # noqa: E402

TRACES = arrays(
    np.float64,
    st.tuples(st.integers(1, 8), st.just(3)),
    elements=st.floats(-5, 5, allow_nan=False),
)


@settings(max_examples=40, deadline=None)
@given(TRACES, TRACES)
def test_frechet_bounds_hausdorff_and_is_symmetric(p, q):
    dfd = m.discrete_frechet(p, q)
    assert dfd >= m.hausdorff(p, q) - 1e-9
    assert dfd == pytest.approx(m.discrete_frechet(q, p))
    assert m.discrete_frechet(p, p) == 0.0


@settings(max_examples=40, deadline=None)
@given(TRACES)
def test_a_trace_scores_zero_against_itself(p):
    s = m.path_scores(p, p)
    assert s.dfd == pytest.approx(0, abs=1e-9) and s.mae == pytest.approx(0, abs=1e-9)
