"""The ROS-free G1 core: kinematics, IK with limits and self-collision, stances, plans, rejections.

Real model (example-robot-data's G1 29-DoF with hands, pinocchio + pin-pink + ProxQP + toppra),
no mocks. The scene geometry is that of config/scenes/g1_room.yaml (pelvis 0.80 m above the
floor, tables 0.72 m high).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip('pinocchio')
pytest.importorskip('pink')

from trace_executor.errors import ErrorCode, PlanningError  # noqa: E402
from trace_executor.g1.camera import (  # noqa: E402
    PoseBuffer,
    at_image_border,
    continue_trace,
    pose_difference,
    pose_from_xyz_quat,
)
from trace_executor.g1.config import G1PlannerConfig  # noqa: E402
from trace_executor.g1.kinematics import ARM, WAIST, standing_upper_body  # noqa: E402
from trace_executor.g1.plan_types import (  # noqa: E402
    ArmMotion,
    ArmRelease,
    HandSegment,
    WalkSegment,
    pack_state,
)
from trace_executor.g1.planner import G1Planner  # noqa: E402
from trace_executor.g1.stance import ReachRegion, base_goal_for, stance_matrix, to_pelvis  # noqa: E402
from trace_executor.g1.walk import WalkLimits, walk_command  # noqa: E402

PELVIS_Z = 0.8015
CUP = np.array([0.45, 0.12, 0.765])
PLATE = np.array([1.42, 0.62, 0.765])


def place_trace(a: np.ndarray, b: np.ndarray, lift: float = 0.12) -> np.ndarray:
    """An oracle-like object-centre trace: rise, travel, descend."""
    top = max(a[2], b[2]) + lift
    mid = [a[:2] + f * (b[:2] - a[:2]) for f in (1 / 3, 2 / 3)]
    return np.array(
        [
            a,
            [*a[:2], (a[2] + top) / 2],
            [*a[:2], top],
            [*mid[0], top + 0.02],
            [*mid[1], top + 0.02],
            [*b[:2], top],
            [*b[:2], (b[2] + top) / 2],
            b,
        ]
    )


@pytest.fixture(scope='module')
def planner() -> G1Planner:
    return G1Planner()


def home(x: float = 0.0, y: float = 0.0, yaw: float = 0.0) -> np.ndarray:
    return pack_state((x, y, PELVIS_Z, yaw), standing_upper_body())


# --- kinematics ----------------------------------------------------------------------------------


def test_head_camera_frame_matches_the_urdf_mount(planner):
    cam = planner.kinematics.camera_pose(standing_upper_body())
    # d435_link sits 0.474 m above and 0.054 m ahead of the pelvis, pitched 47.6° down
    assert cam[:3, 3] == pytest.approx([0.0537, 0.0175, 0.4743], abs=2e-3)
    assert cam[:3, 2] @ np.array([0, 0, -1]) == pytest.approx(math.sin(0.8308), abs=1e-3)
    q = standing_upper_body()
    q[WAIST][0] = 0.5  # waist yaw turns the head camera
    turned = planner.kinematics.camera_pose(q)
    assert math.atan2(turned[1, 2], turned[0, 2]) == pytest.approx(0.5, abs=1e-3)


def test_dex3_closing_directions_come_from_the_finger_limits(planner):
    closed = planner.kinematics.finger_closed_rad
    assert closed['left'][2] > 0 and closed['right'][2] < 0  # thumb_2 mirrors
    assert np.all(closed['left'][3:] < 0) and np.all(closed['right'][3:] > 0)


def test_ik_reaches_the_working_point_within_limits_and_clear_of_the_torso(planner):
    q0 = standing_upper_body()
    for side in ('left', 'right'):
        target = np.eye(4)
        target[:3, 3] = planner.config.reach.working_point(side) + [0, 0, -0.03]
        res = planner.ik.solve(side, target, q0)
        assert res.converged and res.position_error_m < 0.005
        assert np.all(res.q >= planner.lower_rad - 1e-9) and np.all(res.q <= planner.upper_rad)
        other = ARM['right' if side == 'left' else 'left']
        assert res.q[other] == pytest.approx(q0[other], abs=1e-6), 'the other arm holds still'
        assert planner.collision.closest(res.q).distance_m >= planner.collision.margin_m - 0.005


def test_ik_keeps_the_hand_out_of_the_torso(planner):
    """A target inside the chest (waist still): the hand stops at the collision margin."""
    target = np.eye(4)
    target[:3, 3] = [0.02, 0.02, 0.15]
    res = planner.ik.solve('left', target, standing_upper_body(), use_waist=False)
    assert not res.converged
    # the linearised constraint holds the margin to within ~1 cm; the planner rejects any
    # sample closer than margin - 5 mm (COLLISION)
    assert planner.collision.closest(res.q).distance_m >= 0.005


# --- stances -------------------------------------------------------------------------------------


def test_base_goal_puts_the_point_at_the_hand_working_point():
    region = ReachRegion()
    for point, base in (((1.3, 0.45, 0.77), (0.0, 0.0, 0.0)), ((0.5, 0.1, 0.77), (0, 0, 0))):
        p = np.array(point)
        for side in ('left', 'right'):
            g = base_goal_for(p, side, np.array(base), region)
            local = to_pelvis(p, stance_matrix(g[0], g[1], PELVIS_Z, g[2]))
            assert local[:2] == pytest.approx(region.working_point(side)[:2], abs=1e-9)
            assert region.excess(local + [0, 0, PELVIS_Z - p[2]], side) == 0.0
    far = base_goal_for(np.array([1.3, 0.45, 0.77]), 'left', np.zeros(3), region)
    assert far[2] == pytest.approx(math.atan2(0.45, 1.3)), 'walks facing a far object'
    near = base_goal_for(np.array([0.5, 0.1, 0.77]), 'left', np.zeros(3), region)
    assert near[2] == 0.0, 'steps without turning for an object in front'


def test_walk_controller_respects_the_g1_limits_and_converges():
    limits = WalkLimits()
    pose = np.array([0.0, 0.0, 0.0])
    goal = (1.2, 0.4, 0.5)
    dt = 0.05
    for _ in range(400):
        (vx, vy, wz), done, _ = walk_command(tuple(pose), goal, limits)
        if done:
            break
        assert math.hypot(vx, vy) <= 0.5 + 1e-9 and abs(wz) <= 1.0 + 1e-9
        c, s = math.cos(pose[2]), math.sin(pose[2])
        pose += [dt * (c * vx - s * vy), dt * (s * vx + c * vy), dt * wz]
    assert done
    assert math.hypot(pose[0] - 1.2, pose[1] - 0.4) <= limits.position_tolerance_m
    with pytest.raises(ValueError, match='max_speed_m_s'):
        WalkLimits(max_speed_m_s=0.8)


# --- plans ---------------------------------------------------------------------------------------


def test_pick_and_place_within_reach_needs_no_walk_and_keeps_everything_in_limits(planner):
    state = home(0.13, -0.02)
    dest = np.array([0.5, 0.02, 0.765])
    plan = planner.plan(place_trace(CUP, dest), state, speed_scale=1.0)
    kinds = [s.kind.value for s in plan.segments]
    assert 'walk' not in kinds
    assert kinds.count('gripper') == 2 and kinds[-1] == 'arm_release'
    grasp = [s for s in plan.segments if isinstance(s, HandSegment)]
    assert grasp[0].close and not grasp[1].close and grasp[0].side == plan.side
    assert plan.side == 'left', 'the cup is left of the body: the left hand is better placed'
    vmax = planner.velocity_limit_rad_s
    for m in plan.segments:
        if isinstance(m, ArmMotion):
            assert np.all(m.positions_rad >= planner.lower_rad - 1e-6)
            assert np.all(m.positions_rad <= planner.upper_rad + 1e-6)
            dq = np.diff(m.positions_rad, axis=0) / np.diff(m.times_s)[:, None]
            assert np.all(np.abs(dq) <= vmax * 1.05), 'joint velocity limit'
            assert np.diff(m.times_s).max() <= planner.config.sample_period_s + 1e-9
    # The object follows the trace: at the release the hand is above the destination by the
    # planned grasp offset (+ the place clearance).
    release = next(t for t in plan.targets if t.phase == 'release')
    off = planner.grasp_offset('left', 0.0)
    expect = dest + off + [0, 0, planner.config.place_clearance_m]
    assert release.hand_pose[:3, 3] == pytest.approx(expect, abs=0.006)


def test_far_destination_walks_with_the_object_and_looks_again_after_the_first_walk(planner):
    plan = planner.plan(place_trace(CUP, PLATE), home(), speed_scale=1.0)
    walks = plan.walks
    assert len(walks) == 2
    assert walks[0].look_again and not walks[1].look_again
    assert walks[1].holding == plan.side
    place_stance = stance_matrix(walks[1].goal[0], walks[1].goal[1], PELVIS_Z, walks[1].goal[2])
    assert planner.config.reach.excess(to_pelvis(PLATE, place_stance), plan.side) <= 0.03
    kinds = [s.kind.value for s in plan.segments]
    assert kinds.index('gripper') < kinds.index('walk', kinds.index('gripper'))
    # no arm motion while walking: a walk is never between motion samples, and the arms hold
    before = kinds[kinds.index('walk', 1) - 1]
    assert before == 'motion'


def test_far_object_walks_first_then_picks(planner):
    far = np.array([1.30, 0.45, 0.765])
    plan = planner.plan(place_trace(far, np.array([1.45, 0.62, 0.765])), home(), speed_scale=1.0)
    assert plan.segments[0].kind.value in ('motion', 'walk')
    first_walk = plan.walks[0]
    assert math.dist(first_walk.goal[:2], far[:2]) < 0.45
    assert first_walk.look_again


def test_holding_replan_carries_from_the_hand(planner):
    state = home(1.2, 0.37, 0.47)
    base = np.array([1.2, 0.37, PELVIS_Z, 0.47])
    here = planner.grasp_position(state, 'left')
    planner.holding_side = 'left'
    held = here - planner.grasp_offset('left', base[3])
    plan = planner.plan(place_trace(held, PLATE), state, holding=True)
    assert [s.kind.value for s in plan.segments][:2] == ['motion', 'gripper']
    assert not plan.segments[1].close
    assert plan.walks == []


BAD = [
    (np.array([[0.45, 0.12, 0.77], [np.nan, 0.1, 0.8]]), ErrorCode.INVALID_TRACE, 'waypoint 1'),
    (np.array([[0.45, 0.12, 0.77]]), ErrorCode.INVALID_TRACE, 'at least 2'),
    (np.array([[0.45, 0.12, 0.77], [0.5, 0.1, 1.4]]), ErrorCode.UNREACHABLE, 'waypoint 1'),
    (np.array([[0.45, 0.12, 0.3], [0.5, 0.1, 0.8]]), ErrorCode.UNREACHABLE, 'waypoint 0'),
    (np.array([[7.0, 0.0, 0.8], [7.1, 0.0, 0.8]]), ErrorCode.WORKSPACE, 'waypoint 0'),
    (np.array([[0.45, 0.12, 0.77], [2.6, 0.1, 0.8]]), ErrorCode.INVALID_TRACE, 'waypoint 1'),
    (np.zeros((3, 2)), ErrorCode.INVALID_TRACE, 'N×3'),
]


@pytest.mark.parametrize('roll', [-0.09, -0.1])
def test_an_arm_left_inside_the_margin_by_a_stopped_goal_does_not_block_every_plan(planner, roll):
    """Soak: a stopped goal left the left hand 0.3-0.7 cm from the legs (margin 2 cm); every
    later plan's first motion was refused, goal after goal. Motions that come no closer than
    the start are allowed; none may come closer or touch."""
    q = standing_upper_body()
    q[ARM['left']][1] += roll  # shoulder roll: the hand down beside the thigh
    start = planner.collision.distances(q)
    assert planner.collision.closest(q).distance_m < planner.collision.margin_m - 0.01
    far_cup = np.array([1.5, -0.6, 0.765])
    plan = planner.plan(place_trace(far_cup, CUP), pack_state((0, 0, PELVIS_Z, 0), q))
    assert [s.kind.value for s in plan.segments][:2] == ['motion', 'walk']
    for m in plan.segments:
        if isinstance(m, ArmMotion):
            for qk in m.positions_rad:
                d = planner.collision.distances(qk)
                closer = np.minimum(start, planner.collision.margin_m) - d
                assert d.min() > 0 and closer.max() < 0.005


def test_an_arm_dragged_behind_the_body_is_brought_forward_in_joint_space(planner):
    """The state that soak left (right hand behind the body at table height, its wrist
    pitch 0.02 rad past the limit): the tuck before the next walk has no straight hand path,
    so it goes in joint space, clear of the body; the plan goes on."""
    state = np.array(
        [1.171, 0.3638, PELVIS_Z, -2.7347, -0.0096, -0.0155, 0.0355]
        + [0.1996, 0.1503, 0.0001, 1.0998, 0.0, -0.0001, 0.0]
        + [0.3146, -0.0994, -0.0103, 1.2002, 0.0228, 1.6151, 0.0178]
    )
    hand = planner.grasp_position(state, 'right')
    assert to_pelvis(hand, stance_matrix(*state[:4]))[0] < -0.2  # behind the pelvis
    cup = np.array([0.6198, -0.3209, 0.7997])
    plan = planner.plan(np.array([cup, cup + [0, 0, 0.1]]), state, destination_known=False)
    first = plan.segments[0]
    assert first.kind.value == 'motion' and first.phase == 'tuck'
    assert 'right hand is' in plan.note and 'it moves there in joint space' in plan.note, plan.note
    for qk in first.positions_rad:
        assert np.all(qk >= planner.lower_rad - 1e-9) and np.all(qk <= planner.upper_rad + 1e-9)
        assert planner.collision.closest(qk).distance_m > 0.0
    tucked = planner.grasp_position(np.concatenate([state[:4], first.positions_rad[-1]]), 'right')
    assert tucked[2] > 0.88


def test_a_raised_arm_with_no_pose_close_to_the_body_goes_to_rest_in_joint_space(planner):
    """Soak: after a look-around left the left arm forward at table height, the pick-first
    plan's "pull the hands in" had no IK solution (closest 5 mm) and the goal failed. The
    arms now go to the standing pose in joint space, clear of the body."""
    state = np.array(
        [0.7792, 0.0703, 0.8015, -2.7233, -0.0035, -0.0008, -0.028]
        + [0.2722, 0.1926, 0.0426, 1.0643, -0.0265, -1.1932, 0.0249]
        + [0.295, -0.1906, -0.0426, 1.0739, 0.0271, -1.2253, -0.0248]
    )
    block = np.array([0.62, -0.3203, 0.8])
    plan = planner.plan(np.array([block, block + [0, 0, 0.1]]), state, destination_known=False)
    first = plan.segments[0]
    assert first.kind.value == 'motion' and first.phase == 'rest'
    assert 'they go to the standing pose in joint space' in plan.note, plan.note
    assert np.allclose(first.positions_rad[-1], planner.rest_q)
    for qk in first.positions_rad:
        assert np.all(qk >= planner.lower_rad - 1e-9) and np.all(qk <= planner.upper_rad + 1e-9)
        assert planner.collision.closest(qk).distance_m >= 0.0


@pytest.mark.parametrize('points,code,words', BAD)
def test_bad_traces_are_rejected_naming_the_waypoint(planner, points, code, words):
    with pytest.raises(PlanningError) as err:
        planner.plan(points, home())
    assert err.value.code == code
    assert words in err.value.message


def test_wrong_frame_goal_and_state_are_rejected(planner):
    pts = place_trace(CUP, CUP + [0.05, 0, 0])
    with pytest.raises(PlanningError, match='no transform') as err:
        planner.plan(pts, home(), frame_id='base_link')
    assert err.value.code == ErrorCode.INVALID_TRACE
    bad_tf = np.eye(4)
    bad_tf[0, 0] = 2.0
    with pytest.raises(PlanningError, match='rigid'):
        planner.plan(pts, home(), frame_id='camera', transform=bad_tf)
    with pytest.raises(PlanningError, match='push') as err:
        planner.plan(pts, home(), mode='push')
    assert err.value.code == ErrorCode.BAD_GOAL
    with pytest.raises(PlanningError, match='speed_scale'):
        planner.plan(pts, home(), speed_scale=1.5)
    with pytest.raises(PlanningError, match='21 finite'):
        planner.plan(pts, home()[:10])
    state = home()
    state[4 + 6] = 3.0  # left elbow beyond 2.09
    with pytest.raises(PlanningError, match='left_elbow_joint') as err:
        planner.plan(pts, state)
    assert err.value.code == ErrorCode.JOINT_LIMIT


def test_camera_frame_trace_is_expressed_in_odom_with_the_given_transform(planner):
    cam = pose_from_xyz_quat([0.05, 0.02, 1.27], [0.0, 0.0, 0.0, 1.0])
    pts_odom = place_trace(CUP, CUP + [0.05, -0.1, 0])
    inv = np.linalg.inv(cam)
    pts_cam = pts_odom @ inv[:3, :3].T + inv[:3, 3]
    plan = planner.plan(pts_cam, home(0.13, -0.02), frame_id='camera', transform=cam)
    assert plan.trace_base == pytest.approx(pts_odom, abs=1e-9)


def test_unreachable_after_a_walk_is_provisional_but_before_it_is_rejected(planner):
    """A far view may be wrong: what follows a look-again walk is replanned there."""
    far = np.array([1.30, 0.45, 0.765])
    pts = place_trace(far, far + [0.05, 0.0, 0.0])
    pts[-1] = [1.35, 0.45, 1.28]  # a destination seen from afar: too high to place there
    with pytest.raises(PlanningError) as err:
        planner.plan(pts, home())  # beyond max_point_height_m: rejected before anything
    assert err.value.code == ErrorCode.UNREACHABLE and 'waypoint 7' in err.value.message
    lenient = G1Planner(G1PlannerConfig(max_point_height_m=1.35))
    plan = lenient.plan(pts, home())  # accepted: the place is planned again after walking
    assert plan.segments[-1].kind.value == 'walk' and plan.walks[-1].look_again
    assert 'replanned from there' in plan.note


def test_follow_mode_traces_the_path_with_the_hand(planner):
    pts = np.array([[0.45, 0.10, 0.95], [0.48, 0.05, 0.95], [0.50, 0.0, 1.0]])
    plan = planner.plan(pts, home(0.13, -0.02), mode='follow')
    assert 'gripper' not in [s.kind.value for s in plan.segments]
    assert isinstance(plan.segments[-1], ArmRelease)
    assert not any(isinstance(s, WalkSegment) for s in plan.segments)


# --- camera and trace helpers --------------------------------------------------------------------


def test_pose_buffer_interpolates_at_the_image_stamp():
    buf = PoseBuffer(max_gap_s=0.1)
    a = pose_from_xyz_quat([0, 0, 1], [0, 0, 0, 1])
    b = pose_from_xyz_quat([1, 0, 1], [0, 0, math.sin(0.25), math.cos(0.25)])
    buf.add(10.0, a)
    buf.add(10.1, b)
    mid = buf.lookup(10.05)
    dt, dr = pose_difference(
        mid, pose_from_xyz_quat([0.5, 0, 1], [0, 0, math.sin(0.125), math.cos(0.125)])
    )
    assert dt < 1e-9 and dr < 1e-9
    assert buf.lookup(10.15) is not None and buf.lookup(10.5) is None
    assert buf.lookup(9.0) is None


def test_look_again_keeps_an_out_of_view_destination():
    new = np.array([[1.5, 0.4, 0.77], [1.5, 0.4, 0.9], [0.6, 0.0, -3.0]])
    old = np.array([[1.3, 0.45, 0.77], [1.0, 0.3, 0.9], [0.6, 0.0, 0.77]])
    pts, note = continue_trace(new, end_visible=False, previous=old)
    assert pts[0] == pytest.approx(new[0]) and pts[-1] == pytest.approx(old[-1])
    assert note
    same, note = continue_trace(new, end_visible=True, previous=old)
    assert same == pytest.approx(new) and not note
    assert at_image_border(0.0, 200, 640, 480) and not at_image_border(320, 240, 640, 480)
