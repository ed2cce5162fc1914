"""Lifting (pinhole, depth sources, fused rule) against hand-computed values."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
import numpy as np
import pytest

from robotracer_ros.lifting import (
    DEPTH_MODEL,
    DEPTH_SENSOR,
    LiftOptions,
    intrinsics_matrix,
    lift_trace,
    normalised_to_pixels,
    sample_depth,
)

K = intrinsics_matrix(600.0, 500.0, 320.0, 240.0)
W, H = 640, 480


def test_pinhole_lift_matches_hand_computed_values():
    # x=750 -> u = 0.75*640 = 480; y=250 -> v = 0.25*480 = 120
    # X = (480-320)*2/600 = 0.5333; Y = (120-240)*2/500 = -0.48; Z = 2
    r = lift_trace(
        np.array([[750, 250], [500, 500]]),
        np.array([2.0, 1.0]),
        width=W,
        height=H,
        K=K,
        options=LiftOptions(depth_source='model'),
    )
    np.testing.assert_allclose(r.pixels, [[480, 120], [320, 240]])
    np.testing.assert_allclose(r.points, [[160 * 2 / 600, -0.48, 2.0], [0.0, 0.0, 1.0]])
    assert r.depth_source.tolist() == [DEPTH_MODEL, DEPTH_MODEL]


def test_normalised_coordinates_cover_the_whole_image():
    np.testing.assert_allclose(
        normalised_to_pixels([[0, 0], [1000, 1000]], 1280, 720), [[0, 0], [1280, 720]]
    )


def depth_image_mm(h: int = 240, w: int = 320) -> np.ndarray:
    """Half-resolution depth (320x240) of a wall at 1.5 m with a 1.2 m box around (240, 60)."""
    d = np.full((h, w), 1500, np.uint16)
    d[50:71, 230:251] = 1200
    d[60, 240] = 0  # dropouts and a spike inside the window must not matter
    d[59, 241] = 0
    d[61, 239] = 9000
    d[150:170, 150:170] = 0  # a hole: no measurement
    return d


def test_sensor_depth_is_a_robust_median_on_a_depth_image_of_another_resolution():
    d = depth_image_mm()
    # colour pixel (480, 120) -> depth pixel (240, 60) in the half-resolution image
    s = sample_depth(d, np.array([[480.0, 120.0], [320.0, 320.0], [10.0, 10.0]]), (W, H))
    assert s[0] == pytest.approx(1.2)
    assert np.isnan(s[1])  # colour (320, 320) -> depth (160, 160): in the hole
    assert s[2] == pytest.approx(1.5)
    # 32FC1 metres with NaN holes gives the same answer
    f = d.astype(np.float32) / 1000.0
    f[d == 0] = np.nan
    s32 = sample_depth(f, np.array([[480.0, 120.0], [320.0, 320.0]]), (W, H))
    assert s32[0] == pytest.approx(1.2) and np.isnan(s32[1])


def test_sensor_source_lifts_a_2d_answer_with_the_depth_image():
    r = lift_trace(
        np.array([[750, 250]]),
        None,
        width=W,
        height=H,
        K=K,
        depth_image=depth_image_mm(),
        options=LiftOptions(depth_source='sensor'),
    )
    np.testing.assert_allclose(r.points[0], [160 * 1.2 / 600, -120 * 1.2 / 500, 1.2])
    assert r.depth_source.tolist() == [DEPTH_SENSOR]


def test_fused_rule_surface_free_space_behind_and_holes():
    xy = np.array([[750, 250]] * 3 + [[500, 666.6667]])  # last one lands in the hole
    model = np.array([1.21, 0.90, 1.60, 0.7])
    r = lift_trace(
        xy,
        model,
        width=W,
        height=H,
        K=K,
        depth_image=depth_image_mm(),
        options=LiftOptions(depth_source='fused', fuse_threshold_m=0.05, fuse_threshold_rel=0.0),
    )
    # on the surface -> sensor; free space in front -> model; behind -> sensor; hole -> model
    np.testing.assert_allclose(r.depth, [1.2, 0.9, 1.2, 0.7])
    assert r.depth_source.tolist() == [DEPTH_SENSOR, DEPTH_MODEL, DEPTH_SENSOR, DEPTH_MODEL]
    assert r.disagreement.tolist() == [False, True, True, False]
    assert r.behind_surface.tolist() == [False, False, True, False]


def test_fused_threshold_is_relative_to_the_sensor_depth_when_larger():
    r = lift_trace(
        np.array([[750, 250]]),
        np.array([1.23]),
        width=W,
        height=H,
        K=K,
        depth_image=depth_image_mm(),
        options=LiftOptions(fuse_threshold_m=0.01, fuse_threshold_rel=0.05),
    )
    assert not r.disagreement[0]  # 0.03 m < 5 % of 1.2 m


def test_lifting_rejects_impossible_requests_with_reasons():
    with pytest.raises(ValueError, match='needs a 3D answer'):
        lift_trace(
            np.array([[1, 2]]),
            None,
            width=W,
            height=H,
            K=K,
            options=LiftOptions(depth_source='model'),
        )
    with pytest.raises(ValueError, match='needs a depth image'):
        lift_trace(
            np.array([[1, 2]]),
            np.array([1.0]),
            width=W,
            height=H,
            K=K,
            options=LiftOptions(depth_source='sensor'),
        )
    with pytest.raises(ValueError, match='focal lengths'):
        lift_trace(
            np.array([[1, 2]]), np.array([1.0]), width=W, height=H, K=np.diag([0.0, 1.0, 1.0])
        )
    with pytest.raises(ValueError, match='depth_source'):
        LiftOptions(depth_source='lidar')


@settings(max_examples=100, deadline=None)
@given(
    st.floats(0, 1000),
    st.floats(0, 1000),
    st.floats(0.1, 20),
    st.floats(100, 2000),
    st.floats(100, 2000),
)
def test_lifted_points_project_back_to_their_pixels(x, y, d, fx, fy):
    k = intrinsics_matrix(fx, fy, 320.0, 240.0)
    r = lift_trace(
        np.array([[x, y]]),
        np.array([d]),
        width=W,
        height=H,
        K=k,
        options=LiftOptions(depth_source='model'),
    )
    p = r.points[0]
    uvw = k @ p
    np.testing.assert_allclose(uvw[:2] / uvw[2], [x * W / 1000, y * H / 1000], atol=1e-6)
    assert p[2] == pytest.approx(d)
