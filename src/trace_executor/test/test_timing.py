"""Time parameterisation: the own TOPP-RA passes are as fast in motion time as toppra and keep
every joint within its velocity and acceleration limits, at rest at both ends."""

from __future__ import annotations

import numpy as np
import pytest

from trace_executor.timing import CubicPath, TimeParameterizer, TimingError

VMAX = np.array([3.15, 3.15, 3.15, 3.2, 3.2, 3.2])
AMAX = np.full(6, 3.0)


def _paths() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    t = np.linspace(0.0, 1.0, 30)[:, None]
    smooth = np.hstack([np.sin(2 * t + k) * (0.3 + 0.1 * k) for k in range(6)])
    # a descent then a sideways move: a sharp turn in joint space
    corner = np.vstack(
        [np.linspace([0, -1.2, 1.4, -1.8, -1.57, 0], [0, -1.0, 1.5, -2.0, -1.57, 0], 10)]
        + [np.linspace([0, -1.0, 1.5, -2.0, -1.57, 0], [0.8, -1.0, 1.5, -2.0, -1.57, 0.8], 12)[1:]]
    )
    walk = np.cumsum(rng.normal(0, 0.03, (40, 6)), axis=0)
    return {'smooth': smooth, 'corner': corner, 'random_walk': walk, 'two_points': corner[:2]}


@pytest.mark.parametrize('name', list(_paths()))
def test_own_timing_matches_toppra_and_respects_the_limits(name: str) -> None:
    qs = _paths()[name]
    own = TimeParameterizer(VMAX, AMAX).parameterize(qs)
    ref = TimeParameterizer(VMAX, AMAX, method='toppra').parameterize(qs)
    # as fast as TOPP-RA (same discretisation, same margin): within 2 %
    assert own.duration_s == pytest.approx(ref.duration_s, rel=0.02)
    for speed in (1.0, 0.5):
        t, q, v, a = own.sample(speed, 0.004)
        assert np.array_equal(q[0], qs[0]) and np.array_equal(q[-1], qs[-1])
        assert np.all(v[0] == 0) and np.all(v[-1] == 0)
        assert np.all(np.abs(v) <= VMAX * speed * (1 + 1e-9))
        assert np.all(np.abs(a) <= AMAX * speed**2 * (1 + 1e-9))
        # numerically too (finite differences of the positions sent to the robot)
        dt = np.diff(t)
        assert np.all(np.abs(np.diff(q, axis=0)) / dt[:, None] <= VMAX * speed * 1.01)
        # the timed path goes through every waypoint (the spline interpolates them)
        fine_t, fine_q, _, _ = own.sample(speed, 0.0005)
        for w in qs:
            assert np.min(np.max(np.abs(fine_q - w), axis=1)) < 2e-3


def test_cubic_path_interpolates_with_continuous_derivatives() -> None:
    qs = _paths()['random_walk']
    ss = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(qs, axis=0), axis=1))])
    path = CubicPath(ss, qs)
    q, d1, d2 = path.derivatives(ss)
    assert np.allclose(q, qs, atol=1e-12)
    eps = 1e-7
    inner = ss[1:-1]
    for k in (1, 2):
        left, right = path(inner - eps, k), path(inner + eps, k)
        assert np.allclose(left, right, atol=1e-4)
    assert np.allclose(d2[[0, -1]], 0.0, atol=1e-9)  # natural ends


def test_bad_paths_are_refused() -> None:
    timer = TimeParameterizer(VMAX, AMAX)
    with pytest.raises(ValueError, match='two or more waypoints'):
        timer.parameterize(np.zeros((1, 6)))
    with pytest.raises(ValueError, match='consecutive ones distinct'):
        timer.parameterize(np.zeros((3, 6)))
    with pytest.raises(ValueError, match='method'):
        TimeParameterizer(VMAX, AMAX, method='magic')
    with pytest.raises(ValueError, match='positive'):
        TimeParameterizer(np.zeros(6), AMAX)
    assert issubclass(TimingError, RuntimeError)


def test_paths_timed_together_are_timed_as_each_alone() -> None:
    """A plan times its motions between gripper events in one call: same result as one by one,
    also when a path ends exactly where the next starts (a grasp between two motions)."""
    paths = _paths()
    together = [paths['smooth'], paths['corner'], paths['corner'][::-1], paths['two_points']]
    timer = TimeParameterizer(VMAX, AMAX)
    many = timer.parameterize_many(together)
    assert len(many) == len(together)
    for qs, timed in zip(together, many, strict=True):
        alone = timer.parameterize(qs)
        assert timed.duration_s == pytest.approx(alone.duration_s, rel=1e-9)
        t1, q1, v1, a1 = timed.sample(0.7, 0.004)
        t2, q2, v2, a2 = alone.sample(0.7, 0.004)
        assert np.allclose(t1, t2, rtol=0, atol=1e-9)
        assert np.allclose(q1, q2, atol=1e-9) and np.allclose(v1, v2, atol=1e-7)
        assert np.array_equal(q1[0], qs[0]) and np.array_equal(q1[-1], qs[-1])
        assert np.all(np.abs(v1) <= VMAX * 0.7 * (1 + 1e-9))
        assert np.all(np.abs(a1) <= AMAX * 0.49 * (1 + 1e-9))
    assert timer.parameterize_many([]) == []


def test_a_path_that_cannot_be_timed_is_named() -> None:
    paths = _paths()
    timer = TimeParameterizer(VMAX, AMAX)
    with pytest.raises(ValueError, match='consecutive ones distinct'):
        timer.parameterize_many([paths['smooth'], np.zeros((3, 6))])
    with pytest.raises(ValueError, match='two or more'):
        timer.parameterize_many([paths['smooth'], np.zeros((1, 6))])
