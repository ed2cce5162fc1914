"""The G1 world in-process (real MuJoCo physics and rendering, no DDS, no ROS)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from robotracer_sim.g1.joints import BODY_JOINTS, UPPER_BODY_SLOTS, standing_pose_vector
from robotracer_sim.g1.scene import load_g1_scene, parse_g1_scene
from robotracer_sim.g1.world import G1World, HeadCamera
from robotracer_sim.oracle.geometry import project, transform_points, unproject
from robotracer_sim.ur5.scene import SceneError, default_scene_path

Z29 = np.zeros(29)


@pytest.fixture(scope='module')
def scene():
    return load_g1_scene(default_scene_path('g1_room.yaml'))


@pytest.fixture
def world(scene):
    w = G1World(scene)
    w.step(25)
    return w


def _arm_targets() -> np.ndarray:
    """Arms out to the sides and up (clear of the tables), waist slightly turned."""
    q = standing_pose_vector(BODY_JOINTS)
    q[12:15] = [0.15, 0.0, 0.05]
    q[15:22] = [-0.4, 0.9, 0.2, 0.5, 0.1, 0.2, -0.1]
    q[22:29] = [-0.3, -0.8, -0.2, 0.6, -0.1, -0.2, 0.1]
    return q


def test_scene_file_has_near_and_far_tables(scene):
    start = np.array(scene.robot.start[:2])
    cup = np.array(scene.object('red_cup').position)
    plate = np.array(scene.object('plate').position)
    assert scene.table('near_table').contains(*cup[:2])
    assert scene.table('far_table').contains(*plate[:2])
    assert np.linalg.norm(plate[:2] - start) > 1.0, 'the plate must need a walk'
    assert np.linalg.norm(plate[:2] - cup[:2]) > 1.0


def test_scene_errors_name_the_field(scene):
    data = {
        'tables': [{'name': 't', 'center': [0.5, 0], 'size': [0.5, 0.5], 'height': 0.7}],
        'objects': [
            {
                'name': 'cup',
                'shape': 'cup',
                'color': 'red',
                'size': [0.03, 0.08],
                'position': [3.0, 0.0],
            }
        ],
    }
    with pytest.raises(SceneError, match=r'objects\[0\] \(cup\)\.position.*not on any table'):
        parse_g1_scene(data)
    data['objects'][0]['position'] = [0.5, 0.0]
    data['robot'] = {'open_threshold': 0.6, 'close_threshold': 0.5}
    with pytest.raises(SceneError, match='robot.open_threshold'):
        parse_g1_scene(data)


def test_arm_sdk_weight_blends_to_targets_and_back(world):
    target = _arm_targets()
    stand = standing_pose_vector(BODY_JOINTS)
    kp, kd = np.full(29, 60.0), np.full(29, 1.5)
    for i in range(50):  # 1 s ramp at 50 Hz, as the SDK example does
        world.apply_arm_sdk(i / 49, target, Z29, Z29, kp, kd)
        world.step(10)
    world.step(500)
    q = world.body_state().q
    assert np.abs(q[UPPER_BODY_SLOTS] - target[UPPER_BODY_SLOTS]).max() < 0.03
    assert np.abs(q[:12] - stand[:12]).max() < 1e-6, 'legs hold the standing pose'
    half = target.copy()
    world.apply_arm_sdk(0.5, target, Z29, Z29, kp, kd)
    world.step(500)
    mid = world.body_state().q[UPPER_BODY_SLOTS]
    expected = 0.5 * (stand + target)[UPPER_BODY_SLOTS]
    assert np.abs(mid - expected).max() < 0.05, 'weight 0.5 is half way'
    world.apply_arm_sdk(0.0, half, Z29, Z29, kp, kd)
    world.step(750)
    q = world.body_state().q
    assert np.abs(q[UPPER_BODY_SLOTS] - stand[UPPER_BODY_SLOTS]).max() < 0.03


def test_targets_beyond_limits_are_clamped_and_reported(world):
    target = standing_pose_vector(BODY_JOINTS)
    target[18] = 3.5  # left elbow, limit 2.0944
    target[14] = -1.0  # waist pitch, limit -0.52
    notes = world.apply_arm_sdk(1.0, target, Z29, Z29, np.full(29, 60.0), np.full(29, 1.5))
    assert any('left_elbow_joint' in n and 'clamped' in n for n in notes)
    assert any('waist_pitch_joint' in n for n in notes)
    world.step(1000)
    lo, hi = world.info.joint_range[18]
    q = world.body_state().q
    assert q[18] <= hi + 0.01 and q[18] > hi - 0.05
    assert q[14] >= world.info.joint_range[14][0] - 0.01


def test_bad_arm_command_is_rejected_and_the_arm_does_not_move(world):
    before = world.body_state().q
    bad = _arm_targets()
    bad[20] = math.nan
    with pytest.raises(ValueError, match=r'motor_cmd\[20\]\.q \(left_wrist_pitch_joint\)'):
        world.apply_arm_sdk(1.0, bad, Z29, Z29, np.full(29, 60.0), np.full(29, 1.5))
    world.step(250)
    assert np.abs(world.body_state().q - before).max() < 1e-3


def test_base_follows_velocity_within_limits_and_stops(world):
    x0 = world.base_state().position.copy()
    applied, notes = world.set_base_velocity(2.0, 0.0, 3.0, duration=864000.0)
    assert applied[0] == pytest.approx(0.5) and applied[2] == pytest.approx(1.0)
    assert len(notes) == 2
    world.step(500)  # 1 s
    b = world.base_state()
    assert abs(b.linear_body[0]) <= 0.5 + 1e-9 and abs(b.angular_body[2]) <= 1.0 + 1e-9
    assert b.position[0] > x0[0] + 0.1, 'moved forward'
    world.base.stop()
    world.step(500)
    b1 = world.base_state()
    world.step(250)
    assert np.linalg.norm(world.base_state().position - b1.position) < 1e-9, 'stopped'


def test_damp_stops_the_base_and_ignores_walking(world):
    world.set_base_velocity(0.4, 0.0, 0.0, 10.0)
    world.step(250)
    world.set_fsm(1)
    p = world.base_state().position.copy()
    applied, notes = world.set_base_velocity(0.4, 0.0, 0.0, 10.0)
    assert applied is None and 'does not walk' in notes[0]
    world.step(250)
    assert np.allclose(world.base_state().position, p)


def test_grasp_carries_the_object_and_release_lets_go(world):
    side = 'left'
    world.set_object_pose('blue_block', world._grasp_point(side), [0, 0, 0, 1])
    closed = world._hand_closed_end[side] * 0.8
    gains = (np.full(7, 1.5), np.full(7, 0.1))
    world.apply_hand(side, closed, np.zeros(7), np.zeros(7), *gains)
    world.step(50)
    assert world.grasp_state()[side] == 'blue_block'
    assert world.object_poses(['blue_block'])[0].held_by == side
    with pytest.raises(ValueError, match='held by the left hand'):
        world.set_object_pose('blue_block', [0.5, 0.0, 1.0], [0, 0, 0, 1])
    start = world.object_poses(['blue_block'])[0].position.copy()
    world.set_base_velocity(-0.3, 0.0, 0.0, 1.0)
    world.step(750)
    carried = world.object_poses(['blue_block'])[0].position
    assert carried[0] - start[0] == pytest.approx(-0.3, abs=0.03), 'carried along with the walk'
    world.apply_hand(side, np.zeros(7), np.zeros(7), np.zeros(7), *gains)
    world.step(25)
    assert world.grasp_state()[side] is None
    released = world.object_poses(['blue_block'])[0].position.copy()
    world.set_base_velocity(0.3, 0.0, 0.0, 1.0)
    world.step(750)
    after = world.object_poses(['blue_block'])[0].position
    assert after[0] < released[0] + 0.1, 'no longer carried'
    assert after[2] <= released[2] + 0.005, 'not lifted'


def test_closing_far_from_objects_grasps_nothing(world):
    world.apply_hand(
        'right',
        world._hand_closed_end['right'],
        Z29[:7],
        Z29[:7],
        np.full(7, 1.5),
        np.full(7, 0.1),
    )
    world.step(50)
    assert world.grasp_state()['right'] is None


@pytest.mark.parametrize('walk', [False, True])
def test_head_camera_depth_lands_on_ground_truth(world, walk):
    if walk:  # the camera moves with the robot
        world.set_base_velocity(0.15, 0.0, 0.2, 1.0)
        world.step(750)
    cam = HeadCamera(world)
    try:
        rgb, depth, t_wc, _ = cam.capture()
    finally:
        cam.close()
    assert rgb.shape == (480, 640, 3) and depth.shape == (480, 640)
    k = world.camera_intrinsics()
    checked = 0
    for o in world.object_poses():
        spec = world.scene.object(o.name)
        top = o.position + [0, 0, spec.half_extents[2]]
        if spec.shape in ('cup', 'bowl'):
            top = o.position + [spec.size[0] - 0.003, 0, spec.half_extents[2] - 0.002]
        u, v, z = project(top[None], k, t_wc)[0]
        ui, vi = int(round(u)), int(round(v))
        if not (z > 0 and 2 <= ui < 638 and 2 <= vi < 478):
            continue
        p = transform_points(t_wc, unproject(ui, vi, depth[vi, ui], k))[0]
        assert np.linalg.norm(p - top) < 0.02, f'{o.name}: {p} vs ground truth {top}'
        checked += 1
    assert checked >= 2, 'the near table objects are in view'


def _lift_answer(text: str, k: np.ndarray, t_wc: np.ndarray, w: int, h: int) -> np.ndarray:
    import re

    pts = [tuple(map(float, m)) for m in re.findall(r'\(([\d.]+), ([\d.]+), ([\d.]+)\)', text)]
    assert pts, f'no 3D trace in {text!r}'
    a = np.array(pts)
    return transform_points(t_wc, unproject(a[:, 0] / 1000 * w, a[:, 1] / 1000 * h, a[:, 2], k))


@pytest.mark.parametrize('walk', [False, True])
def test_oracle_answers_for_the_head_camera(world, walk):
    from robotracer_sim.oracle import Oracle, OracleConfig

    if walk:  # after a turn the same instruction still lifts to the same world points
        world.set_base_velocity(0.0, 0.0, 0.4, 1.0)
        world.step(750)
    t_wc = world.camera_pose()
    oracle = Oracle(lambda: world.snapshot(t_wc), OracleConfig(latency=0.0, seed=0))
    ans = oracle.answer('put the red cup on the far table', 640, 480)
    assert ans.usable, ans.reason
    pts = _lift_answer(ans.text, world.camera_intrinsics(), t_wc, 640, 480)
    cup = world.object_poses(['red_cup'])[0].position
    far = world.scene.table('far_table')
    assert np.linalg.norm(pts[0] - cup) < 0.02
    assert far.contains(pts[-1][0], pts[-1][1]) and abs(pts[-1][2] - far.height) < 0.1
    assert not oracle.answer('dance a little jig', 640, 480).usable
