"""The simulator's trajectory controller behaves like ros2_control's JTC (Jazzy) where
replanning while moving depends on it: a new trajectory starts from the measured position and
velocity, segments with accelerations are quintic, and a trajectory must end at rest."""

from __future__ import annotations

import numpy as np
import pytest

from robotracer_sim.ur5.trajectory import JointLimits, TrajectoryError, build_trajectory

JOINTS = ('a', 'b')
LIMITS = JointLimits(np.full(2, -6.0), np.full(2, 6.0))


def _build(**kw):
    args = dict(
        robot_joints=JOINTS,
        limits=LIMITS,
        current=np.array([0.0, 1.0]),
        now=10.0,
        joint_names=list(JOINTS),
        times=[0.5, 1.0],
        positions=[[0.5, 1.0], [1.0, 1.0]],
    )
    args.update(kw)
    return build_trajectory(**args)


def test_a_replacing_trajectory_starts_from_the_measured_velocity() -> None:
    v_now = np.array([1.2, -0.4])
    traj = _build(
        current_velocity=v_now,
        velocities=[[1.0, 0.0], [0.0, 0.0]],
        accelerations=[[0.0, 0.0], [0.0, 0.0]],
    )
    q, qd = traj.sample(10.0)
    assert np.allclose(q, [0.0, 1.0]) and np.allclose(qd, v_now)  # no jump at the switch
    # continuous just after the switch too (the JTC's spline from the state before)
    q1, qd1 = traj.sample(10.001)
    assert np.allclose(q1, q + v_now * 0.001, atol=1e-5)
    assert np.allclose(qd1, v_now, atol=0.05)


def test_quintic_segments_meet_each_waypoint_state() -> None:
    traj = _build(
        current_velocity=np.zeros(2),
        times=[0.4, 0.9, 1.5],
        positions=[[0.3, 1.1], [0.8, 0.9], [1.0, 1.0]],
        velocities=[[0.9, 0.2], [0.5, -0.3], [0.0, 0.0]],
        accelerations=[[0.5, 0.0], [-1.0, 0.4], [0.0, 0.0]],
    )
    for t, p, v in ((0.4, [0.3, 1.1], [0.9, 0.2]), (0.9, [0.8, 0.9], [0.5, -0.3])):
        for eps in (-1e-7, 1e-7):  # from both sides: continuous position and velocity
            q, qd = traj.sample(10.0 + t + eps)
            assert np.allclose(q, p, atol=1e-5) and np.allclose(qd, v, atol=1e-4)
    # the acceleration given at a waypoint is the spline's there (quintic, not cubic)
    h = 1e-4
    qd_a = traj.sample(10.9 - h)[1]
    qd_b = traj.sample(10.9 + h)[1]
    assert np.allclose((qd_b - qd_a) / (2 * h), [-1.0, 0.4], atol=0.02)
    q_end, qd_end = traj.sample(12.0)
    assert np.allclose(q_end, [1.0, 1.0]) and np.allclose(qd_end, 0.0)


def test_velocities_only_are_cubic_and_positions_only_linear() -> None:
    cubic = _build(velocities=[[1.0, 0.0], [0.0, 0.0]])
    assert cubic.accelerations is None and cubic.velocities is not None
    linear = _build()
    q, qd = linear.sample(10.25)
    assert np.allclose(q, [0.25, 1.0]) and np.allclose(qd, [1.0, 0.0])


def test_a_trajectory_that_does_not_end_at_rest_is_refused() -> None:
    with pytest.raises(TrajectoryError, match='end at rest'):
        _build(velocities=[[1.0, 0.0], [0.2, 0.0]])


def test_accelerations_must_cover_every_waypoint() -> None:
    with pytest.raises(TrajectoryError, match='accelerations'):
        _build(velocities=[[1.0, 0.0], [0.0, 0.0]], accelerations=[[0.0, 0.0]])
