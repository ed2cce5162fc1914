"""UR5 model, TCP, IK and collision checks against the real URDF (ROS-free)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
import numpy as np
import pytest

from trace_executor.ur5 import UR5_HOME, UR5_JOINT_NAMES, Ur5Kinematics, top_down_rotation
from trace_executor.ur5.collision import CollisionChecker
from trace_executor.ur5.ik import PinkIk


@pytest.fixture(scope='module')
def kin() -> Ur5Kinematics:
    return Ur5Kinematics()


@pytest.fixture(scope='module')
def ik(kin: Ur5Kinematics) -> PinkIk:
    return PinkIk(kin, kin.lower_rad, kin.upper_rad)


@pytest.fixture(scope='module')
def collision(kin: Ur5Kinematics) -> CollisionChecker:
    return CollisionChecker(kin)


def test_model_has_the_ur5_joints_and_limits(kin: Ur5Kinematics) -> None:
    assert kin.joint_names == UR5_JOINT_NAMES
    assert np.all(kin.lower_rad < kin.upper_rad)
    assert np.all(kin.velocity_limit_rad_s > 3.0)


def test_home_pose_looks_down_at_the_table(kin: Ur5Kinematics) -> None:
    tcp = kin.forward_tcp(np.array(UR5_HOME))
    # TCP z axis points down, the TCP is in front of the robot, above where objects lie.
    assert tcp[:3, 2] @ np.array([0.0, 0.0, -1.0]) > 0.999
    assert 0.3 < tcp[0, 3] < 0.7 and abs(tcp[1, 3]) < 0.4
    assert 0.15 < tcp[2, 3] < 0.4
    # and it is the default top-down orientation (yaw −π/2): no wrist turn needed from home.
    assert np.allclose(tcp[:3, :3], top_down_rotation(-np.pi / 2), atol=2e-3)


def test_tcp_is_tool0_moved_along_its_z(kin: Ur5Kinematics) -> None:
    q = np.array([0.3, -1.2, 1.4, -1.8, -1.57, 0.4])
    tcp = kin.forward_tcp(q)
    tool0 = Ur5Kinematics(tcp_offset_m=0.0).forward_tcp(q)
    assert np.allclose(tcp[:3, :3], tool0[:3, :3])
    assert np.allclose(tcp[:3, 3], tool0[:3, 3] + 0.15 * tool0[:3, 2], atol=1e-9)
    origins = kin.joint_origins(q)
    assert origins.shape == (7, 3) and np.allclose(origins[-1], tcp[:3, 3])


@settings(max_examples=25, deadline=None)
@given(
    q=st.tuples(
        st.floats(-1.2, 1.2),
        st.floats(-2.2, -0.8),
        st.floats(0.8, 2.2),
        st.floats(-2.4, -0.8),
        st.floats(-1.9, -1.2),
        st.floats(-1.0, 1.0),
    ),
    seed_offset=st.tuples(*[st.floats(-0.05, 0.05)] * 6),
)
def test_ik_reaches_poses_from_a_nearby_seed(
    kin: Ur5Kinematics, ik: PinkIk, q: tuple, seed_offset: tuple
) -> None:
    target = kin.forward_tcp(np.array(q))
    seed = np.array(q) + np.array(seed_offset)
    res = ik.solve(target[:3, 3], target[:3, :3], seed)
    assert res.converged, res
    reached = kin.forward_tcp(res.q)
    assert np.linalg.norm(reached[:3, 3] - target[:3, 3]) <= 1e-3
    # seeded nearby, it stays on the same branch: no joint moved far
    assert np.max(np.abs(res.q - np.array(q))) < 0.3


def test_ik_reports_an_out_of_reach_pose(kin: Ur5Kinematics, ik: PinkIk) -> None:
    res = ik.solve(np.array([1.2, 0.0, 0.1]), top_down_rotation(0.0), np.array(UR5_HOME))
    assert not res.converged
    assert res.position_error_m > 0.05  # it got as close as the arm allows, which is far
    assert np.all(res.q >= kin.lower_rad) and np.all(res.q <= kin.upper_rad)


def test_home_is_collision_free(collision: CollisionChecker) -> None:
    assert collision.first_collision(np.array(UR5_HOME)) is None


def test_arm_folded_into_the_table_collides(collision: CollisionChecker) -> None:
    # shoulder lift pointing the upper arm down through the table top
    q = np.array([0.0, 0.6, 0.3, -1.57, -1.57, 0.0])
    hit = collision.first_collision(q)
    assert hit is not None and 'table' in hit


def test_elbow_folded_onto_the_upper_arm_collides(collision: CollisionChecker) -> None:
    q = np.array([0.0, -1.57, 3.1, -1.57, -1.57, 0.0])
    hit = collision.first_collision(q)
    assert hit is not None and 'table' not in hit
