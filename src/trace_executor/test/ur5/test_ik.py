"""Closed-form UR IK (:mod:`trace_executor.ur5.closed_form`) against pinocchio's forward
kinematics of the URDF, and against ur-analytic-ik (a compiled implementation) where installed.

Frames: the closed form works in UR's DH base frame, which the URDF calls ``base`` (``base_link``
turned by π about z), and its flange is the URDF's ``tool0``; the planner's targets are the
``tcp`` (tool0 + 0.15 m along its z) in ``base_link``.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

from hypothesis import assume, given, settings
from hypothesis import strategies as st
import numpy as np
import pinocchio as pin
import pytest

from trace_executor.ur5 import UR5_HOME, Ur5Kinematics, closed_form, top_down_rotation
from trace_executor.ur5.ik import AnalyticIk, IkFailure

needs_reference = pytest.mark.skipif(
    importlib.util.find_spec('ur_analytic_ik') is None,
    reason='ur-analytic-ik (the reference implementation) is not installed on this Python',
)

Q_HOME = np.array(UR5_HOME)

joint_q = st.tuples(*[st.floats(-math.pi, math.pi)] * 6)


def _away_from_zero(lo: float, hi: float) -> st.SearchStrategy[float]:
    return st.one_of(st.floats(lo, hi), st.floats(-hi, -lo))


# Regular configurations: elbow not stretched, wrist_2 not aligning wrist_1 and wrist_3 (at
# those singularities the closed form returns no solution for the exact pose).
regular_q = st.tuples(
    st.floats(-math.pi, math.pi),
    st.floats(-math.pi, math.pi),
    _away_from_zero(0.2, 2.9),
    st.floats(-math.pi, math.pi),
    _away_from_zero(0.2, 2.9),
    st.floats(-math.pi, math.pi),
)


@pytest.fixture(scope='module')
def kin() -> Ur5Kinematics:
    return Ur5Kinematics()


@pytest.fixture(scope='module')
def ik(kin: Ur5Kinematics) -> AnalyticIk:
    return AnalyticIk(kin, kin.lower_rad, kin.upper_rad)


def _frame(kin: Ur5Kinematics, q: np.ndarray, name: str) -> np.ndarray:
    data = kin.model.createData()
    pin.framesForwardKinematics(kin.model, data, np.asarray(q, dtype=float))
    return data.oMf[kin.model.getFrameId(name)].homogeneous


def test_dh_base_is_the_urdf_base_frame_turned_from_base_link(
    kin: Ur5Kinematics, ik: AnalyticIk
) -> None:
    # UR's DH base is the URDF's `base` frame: base_link turned by π about z (x, y flipped)
    rz_pi = np.diag([-1.0, -1.0, 1.0, 1.0])
    assert np.allclose(ik.world_t_dh_base, rz_pi, atol=1e-9)
    assert np.allclose(_frame(kin, Q_HOME, 'base'), ik.world_t_dh_base, atol=1e-9)


@settings(max_examples=40, deadline=None)
@given(q=joint_q)
def test_closed_form_fk_is_pinocchios_base_to_tool0(kin: Ur5Kinematics, q: tuple) -> None:
    # the DH forward kinematics == the URDF's base → tool0, to 1e-6, for any configuration
    base = _frame(kin, np.array(q), 'base')
    tool0 = _frame(kin, np.array(q), 'tool0')
    ours = closed_form.forward(closed_form.UR_DH['ur5'], np.array(q))
    assert np.allclose(np.linalg.inv(base) @ tool0, ours, atol=1e-6)


@needs_reference
@pytest.mark.parametrize('robot', sorted(closed_form.UR_DH))
def test_every_dh_table_and_its_solutions_agree_with_ur_analytic_ik(robot: str) -> None:
    import ur_analytic_ik

    ref = getattr(ur_analytic_ik, robot)
    dh = closed_form.UR_DH[robot]
    qs = np.random.default_rng(7).uniform(-math.pi, math.pi, (300, 6))
    poses = np.array([ref.forward_kinematics(*q) for q in qs])
    assert np.allclose(closed_form.forward(dh, qs), poses, atol=1e-12)
    sols = closed_form.inverse(dh, poses)
    found = np.isfinite(sols).all(axis=2)
    # as many branches as the reference finds, each reaching the pose, the original among them
    assert found.sum(axis=1).tolist() == [len(ref.inverse_kinematics(p)) for p in poses]
    reached = closed_form.forward(dh, np.where(found[..., None], sols, 0.0))
    assert np.abs(reached - poses[:, None])[found].max() < 1e-9
    wrapped = np.abs((sols - qs[:, None] + math.pi) % (2 * math.pi) - math.pi).max(axis=2)
    assert np.nanmin(wrapped, axis=1).max() < 1e-9


def test_a_whole_path_is_solved_in_one_batch_with_nan_for_missing_branches() -> None:
    dh = closed_form.UR_DH['ur5']
    q = np.array([[0.3, -1.2, 1.4, -1.7, -1.5, 0.2], [0.3, -1.2, 1.4, -1.7, 0.0, 0.2]])
    poses = closed_form.forward(dh, q)
    far = poses[0].copy()
    far[:3, 3] = [2.0, 0.0, 0.3]  # beyond the reach of the arm
    sols = closed_form.inverse(dh, np.stack([poses[0], far, poses[1]]))
    assert sols.shape == (3, 8, 6)
    assert np.isnan(sols[1]).all()
    assert np.isfinite(sols[0]).all(axis=1).sum() == 8
    # the straight-up wrist (q5 = 0) is singular: the branches there still reach the pose
    ok = np.isfinite(sols[2]).all(axis=1)
    assert ok.any()
    assert np.allclose(closed_form.forward(dh, sols[2][ok]), poses[1], atol=1e-6)


@settings(max_examples=40, deadline=None)
@given(q=regular_q)
def test_every_solution_reaches_the_tcp_pose(kin: Ur5Kinematics, ik: AnalyticIk, q: tuple) -> None:
    wrist = kin.joint_origins(np.array(q))[4]
    assume(np.hypot(wrist[0], wrist[1]) > 0.15)  # not over the shoulder (base) singularity
    target = kin.forward_tcp(np.array(q))
    sols = ik.solutions(target[:3, 3], target[:3, :3])
    assert 1 <= len(sols) <= 8
    for s in sols:
        reached = kin.forward_tcp(s)  # pinocchio, URDF frames
        assert np.linalg.norm(reached[:3, 3] - target[:3, 3]) < 1e-6
        assert np.allclose(reached[:3, :3], target[:3, :3], atol=1e-6)


@settings(max_examples=40, deadline=None)
@given(
    q=st.tuples(
        st.floats(-2.5, 2.5),
        st.floats(-2.8, -0.3),
        st.floats(0.3, 2.8),
        st.floats(-3.0, 3.0),
        st.floats(-2.8, -0.3),
        st.floats(-3.0, 3.0),
    ),
    offset=st.tuples(*[st.floats(-0.05, 0.05)] * 6),
)
def test_solve_returns_the_configuration_nearest_the_seed(
    kin: Ur5Kinematics, ik: AnalyticIk, q: tuple, offset: tuple
) -> None:
    # away from singularities (wrist_2 and elbow away from 0), seeded next to q: q itself
    target = kin.forward_tcp(np.array(q))
    res = ik.solve(target[:3, 3], target[:3, :3], np.array(q) + np.array(offset))
    assert res.converged
    assert np.allclose(res.q, q, atol=1e-6)
    assert np.linalg.norm(kin.forward_tcp(res.q)[:3, 3] - target[:3, 3]) < 1e-6


def test_the_seed_picks_the_branch(kin: Ur5Kinematics, ik: AnalyticIk) -> None:
    target = kin.forward_tcp(Q_HOME)
    sols = ik.solutions(target[:3, 3], target[:3, :3])
    for s in sols:  # seeded at any branch, that branch comes back
        assert np.allclose(ik.solve(target[:3, 3], target[:3, :3], s + 0.01).q, s, atol=1e-9)


def test_wrist_turned_by_a_full_turn_stays_there(kin: Ur5Kinematics, ik: AnalyticIk) -> None:
    # the limits are ±2π: a seed with wrist_3 at q + 2π gets the solution at q + 2π, not q
    q = Q_HOME.copy()
    q[5] = 2 * math.pi - 0.4  # within the ±2π limits
    target = kin.forward_tcp(q)
    res = ik.solve(target[:3, 3], target[:3, :3], q)
    assert res.converged and res.q[5] == pytest.approx(q[5], abs=1e-9)


def test_a_pose_beyond_the_joint_limits_is_refused_naming_the_joint(kin: Ur5Kinematics) -> None:
    lower, upper = kin.lower_rad.copy(), kin.upper_rad.copy()
    lower[0], upper[0] = -0.5, 0.5  # shoulder pan limited to ±0.5 rad
    limited = AnalyticIk(kin, lower, upper)
    q = Q_HOME.copy()
    q[0] = 0.8
    target = kin.forward_tcp(q)
    res = limited.solve(target[:3, 3], target[:3, :3], Q_HOME)
    assert not res.converged and res.joints_at_limit == (0,)
    assert np.all(res.q >= lower) and np.all(res.q <= upper)


def test_out_of_reach_has_no_solution(kin: Ur5Kinematics, ik: AnalyticIk) -> None:
    res = ik.solve(np.array([1.5, 0.0, 0.2]), top_down_rotation(0.0), Q_HOME)
    assert not res.converged and math.isinf(res.position_error_m)


def test_path_keeps_one_branch_and_reports_where_the_limits_end_it(
    kin: Ur5Kinematics, ik: AnalyticIk
) -> None:
    # an arc of TCP poses: solved sample by sample, continuous, and each reaches its pose
    angles = np.linspace(-0.6, 0.6, 61)
    pos = np.stack([0.5 * np.cos(angles), 0.5 * np.sin(angles), np.full_like(angles, 0.2)], 1)
    rot = np.repeat(top_down_rotation(-math.pi / 2)[None], len(angles), axis=0)
    seed = ik.solve(pos[0], rot[0], Q_HOME).q
    res = ik.solve_path(pos, rot, seed)
    assert res.failed_at is None
    assert np.abs(np.diff(res.q, axis=0)).max() < 0.1
    for q, p in zip(res.q, pos, strict=True):
        assert np.linalg.norm(kin.forward_tcp(q)[:3, 3] - p) < 1e-6
    lower, upper = kin.lower_rad.copy(), kin.upper_rad.copy()
    upper[0] = 0.3
    limited = AnalyticIk(kin, lower, upper).solve_path(pos, rot, seed)
    assert limited.reason is IkFailure.JOINT_LIMIT and limited.joint == 0
    assert res.q[limited.failed_at, 0] > 0.3 >= res.q[limited.failed_at - 1, 0]


def test_a_urdf_with_other_link_lengths_is_refused(tmp_path: Path, kin: Ur5Kinematics) -> None:
    text = kin.urdf_path.read_text()
    assert 'xyz="0.0 0.0 0.39225"' in text
    other = tmp_path / 'ur5_long_forearm.urdf'
    other.write_text(text.replace('xyz="0.0 0.0 0.39225"', 'xyz="0.0 0.0 0.45"'))
    longer = Ur5Kinematics(other)
    with pytest.raises(ValueError, match='does not match the ur5 DH parameters'):
        AnalyticIk(longer, longer.lower_rad, longer.upper_rad)
