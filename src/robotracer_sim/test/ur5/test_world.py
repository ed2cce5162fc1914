"""The UR5 world's core (no ROS): scene validation, RGB-D geometry, arm, grasp model."""

from __future__ import annotations

from pathlib import Path

import mujoco
import numpy as np
import pytest
import yaml

from robotracer_sim.oracle.geometry import (
    intrinsics_from_fovy,
    project,
    transform_points,
    unproject,
)
from robotracer_sim.ur5.scene import SceneError, default_scene_path, load_scene, parse_scene
from robotracer_sim.ur5.world import TrajectoryError, Ur5World

SCENE = default_scene_path()


@pytest.fixture(scope='module')
def raw_scene() -> dict:
    return yaml.safe_load(SCENE.read_text())


@pytest.fixture
def world() -> Ur5World:
    w = Ur5World(SCENE)
    w.step(0.3)  # let the objects settle
    yield w
    w.close()


def tcp_ik(world: Ur5World, target: np.ndarray, q0: np.ndarray) -> np.ndarray:
    """Joint positions putting the TCP at ``target`` with the tool pointing down (test helper)."""
    m = world.model
    d = mujoco.MjData(m)
    q = q0.copy()
    r_des = np.diag([1.0, -1.0, -1.0])
    for _ in range(300):
        d.qpos[world.info.arm_qpos] = q
        mujoco.mj_kinematics(m, d)
        mujoco.mj_comPos(m, d)
        p = d.site_xpos[world.info.tcp_site]
        r = d.site_xmat[world.info.tcp_site].reshape(3, 3)
        e = np.concatenate(
            [target - p, 0.5 * sum(np.cross(r[:, i], r_des[:, i]) for i in range(3))]
        )
        if np.linalg.norm(e) < 1e-6:
            break
        jp, jr = np.zeros((3, m.nv)), np.zeros((3, m.nv))
        mujoco.mj_jacSite(m, d, jp, jr, world.info.tcp_site)
        j = np.vstack([jp, jr])[:, world.info.arm_dof]
        q = q + j.T @ np.linalg.solve(j @ j.T + 1e-4 * np.eye(6), e)
    return q


def move_tcp(world: Ur5World, target, duration: float = 1.2) -> None:
    q = tcp_ik(world, np.asarray(target, dtype=float), world.joint_positions())
    world.set_trajectory(world.joint_names, [duration], [q])
    world.step(duration + 0.3)


# ----------------------------------------------------------------------------- scene file


def test_shipped_scene_has_the_required_objects():
    scene = load_scene(SCENE)
    assert {'red_cube', 'blue_cube', 'green_cube', 'cup', 'bowl', 'plate'} <= set(scene.names)
    for o in scene.objects:
        assert -0.3 <= o.position[0] <= 0.9 and abs(o.position[1]) <= 0.4
        assert o.position[2] == pytest.approx(o.half_extents[2])  # resting on the table


@pytest.mark.parametrize(
    'mutate, field',
    [
        (lambda d: d['objects'][0].update(shape='pyramid'), "shape: unknown shape 'pyramid'"),
        (lambda d: d['objects'].append(dict(d['objects'][0])), "duplicate object name 'red_cube'"),
        (lambda d: d['objects'][1].update(color='mauve'), "color: unknown colour 'mauve'"),
        (lambda d: d['objects'][0].update(position=[3.0, 0.0]), 'is off the table'),
        (lambda d: d['objects'][0].update(size=[0.1, -0.1, 0.1]), 'sizes must be > 0'),
        (lambda d: d['camera'].update(quat_xyzw=[1, 1, 0, 0]), 'not a unit quaternion'),
        (lambda d: d['camera'].update(width=0), 'camera.width'),
        (lambda d: d.update(lights=[]), "unknown key(s) ['lights']"),
        (lambda d: d['robot'].update(home=[0, 0, 0]), 'robot.home'),
    ],
)
def test_invalid_scene_is_rejected_with_the_field_named(raw_scene, mutate, field):
    data = yaml.safe_load(yaml.safe_dump(raw_scene))
    mutate(data)
    with pytest.raises(SceneError, match='bad.yaml') as err:
        parse_scene(data, source='bad.yaml')
    assert field in str(err.value)


def test_missing_scene_file_says_so(tmp_path: Path):
    with pytest.raises(SceneError, match='scene file not found'):
        load_scene(tmp_path / 'nope.yaml')
    bad = tmp_path / 'bad.yaml'
    bad.write_text('objects: [\n')
    with pytest.raises(SceneError, match='not valid YAML'):
        load_scene(bad)


# ----------------------------------------------------------------------------- camera


def test_intrinsics_follow_the_documented_convention(world):
    k = world.k
    assert k[0, 0] == pytest.approx((480 / 2) / np.tan(np.radians(45.0) / 2))
    assert k[0, 0] == k[1, 1]
    assert (k[0, 2], k[1, 2]) == (319.5, 239.5)
    np.testing.assert_allclose(k, intrinsics_from_fovy(640, 480, 45.0))


def test_depth_pixel_unprojects_onto_the_objects_ground_truth(world):
    rgb, depth = world.render_rgbd()
    assert rgb.shape == (480, 640, 3) and rgb.dtype == np.uint8
    assert depth.shape == (480, 640) and depth.dtype == np.float32
    poses = world.object_poses()
    for name in ('red_cube', 'blue_cube', 'green_cube', 'plate'):
        obj = world.scene.object(name)
        top = poses[name].position + [0, 0, obj.half_extents[2]]  # centre of the top face
        u, v, _ = project(top[None], world.k, world.t_world_camera)[0]
        ui, vi = int(round(u)), int(round(v))
        z = float(depth[vi, ui])
        assert z > 0, f'no depth on {name}'
        p = transform_points(world.t_world_camera, unproject(ui, vi, z, world.k))[0]
        assert np.linalg.norm(p - top) < 0.01, f'{name}: {p} vs {top}'
    # the red cube is red where it is seen
    u, v, _ = project(poses['red_cube'].position[None], world.k, world.t_world_camera)[0]
    r, g, b = rgb[int(round(v)), int(round(u))].astype(int)
    assert r > 120 and g < 80 and b < 80


def test_depth_is_z_depth_not_range(world):
    _, depth = world.render_rgbd()
    # table-top pixels (z = 0) read as z-depth land on the table (read as range: below it)
    for ui, vi in ((40, 400), (600, 400), (320, 420)):
        z = float(depth[vi, ui])
        ray = unproject(ui, vi, 1.0, world.k)[0]
        p_cam = ray * z
        p = transform_points(world.t_world_camera, p_cam[None])[0]
        assert abs(p[2]) < 0.005, f'pixel ({ui}, {vi}) lands at height {p[2]}'


# ----------------------------------------------------------------------------- arm


def test_trajectory_moves_the_arm_to_the_commanded_joints(world):
    q0 = world.joint_positions()
    goal = q0 + np.array([0.4, -0.2, 0.3, 0.2, -0.3, 0.5])
    mid = q0 + 0.5 * (goal - q0)
    world.set_trajectory(world.joint_names, [1.0, 2.0], [mid, goal])
    world.step(1.0)
    np.testing.assert_allclose(world.joint_positions(), mid, atol=0.02)  # on time mid-way
    world.step(1.5)
    np.testing.assert_allclose(world.joint_positions(), goal, atol=0.005)
    assert not world.trajectory_active


def test_partial_trajectory_keeps_other_joints_and_reordering_is_honoured(world):
    q0 = world.joint_positions()
    world.set_trajectory(['wrist_3_joint', 'shoulder_pan_joint'], [1.0], [[1.0, 0.3]])
    world.step(1.5)
    q = world.joint_positions()
    assert q[5] == pytest.approx(1.0, abs=0.005) and q[0] == pytest.approx(0.3, abs=0.005)
    np.testing.assert_allclose(q[1:5], q0[1:5], atol=0.005)


def test_new_trajectory_replaces_the_running_one_and_empty_stops(world):
    q0 = world.joint_positions()
    world.set_trajectory(world.joint_names, [2.0], [q0 + 1.0])
    world.step(0.5)
    other = q0 + np.array([-0.3, 0, 0, 0, 0, 0])
    world.set_trajectory(world.joint_names, [1.0], [other])
    world.step(1.5)
    np.testing.assert_allclose(world.joint_positions(), other, atol=0.005)
    world.set_trajectory(world.joint_names, [3.0], [q0 + 0.6])
    world.step(0.5)
    world.set_trajectory([], [], [])  # empty: stop where it is
    stopped = world.joint_positions()
    world.step(1.0)
    assert np.max(np.abs(world.joint_positions() - stopped)) < 0.05
    assert np.max(np.abs(world.joint_positions() - (q0 + 0.6))) > 0.2


@pytest.mark.parametrize(
    'names, times, positions, message',
    [
        (['elbow', 'wrist_1_joint'], [1.0], [[0, 0]], 'unknown joint'),
        (['elbow_joint'], [1.0, 0.5], [[0], [0.1]], 'strictly increasing'),
        (['elbow_joint'], [1.0], [[4.0]], 'outside its limits'),
        (['elbow_joint'], [1.0], [[float('nan')]], 'non-finite'),
        (['elbow_joint'], [1.0], [[0.1, 0.2]], '2 positions for 1 joints'),
    ],
)
def test_invalid_trajectory_is_refused_and_the_arm_does_not_move(
    world, names, times, positions, message
):
    q0 = world.joint_positions()
    with pytest.raises(TrajectoryError, match=message):
        world.set_trajectory(names, times, positions)
    world.step(0.5)
    np.testing.assert_allclose(world.joint_positions(), q0, atol=1e-3)


# ----------------------------------------------------------------------------- grasp model


def test_grasp_move_release_carries_the_cube_onto_the_plate(world):
    cube = world.object_poses()['red_cube'].position
    plate = world.object_poses()['plate'].position
    move_tcp(world, cube + [0, 0, 0.12])
    move_tcp(world, cube)
    assert world.set_gripper(True) == (True, 'grasped red_cube')
    assert world.held_object == 'red_cube'
    move_tcp(world, cube + [0, 0, 0.15])
    lifted = world.object_poses()['red_cube']
    assert lifted.held and lifted.position[2] > cube[2] + 0.12  # it follows the hand
    drop = plate + [0, 0, 0.006 + 0.0225 + 0.01]
    move_tcp(world, drop + [0, 0, 0.1])
    move_tcp(world, drop)
    assert world.set_gripper(False) == (True, 'released red_cube')
    move_tcp(world, drop + [0, 0, 0.1])
    world.step(0.5)
    rest = world.object_poses()['red_cube']
    assert not rest.held
    assert np.linalg.norm(rest.position[:2] - plate[:2]) < 0.03
    assert rest.position[2] == pytest.approx(plate[2] + 0.006 + 0.0225, abs=0.005)  # on the plate
    dof = world.info.object_dof['red_cube']
    assert np.linalg.norm(world.data.qvel[dof : dof + 3]) < 0.01  # at rest under physics


def test_released_object_falls_under_physics(world):
    cube = world.object_poses()['blue_cube'].position
    move_tcp(world, cube)
    world.set_gripper(True)
    move_tcp(world, cube + [0, 0, 0.2])
    world.set_gripper(False)
    world.step(1.0)
    rest = world.object_poses()['blue_cube'].position
    assert rest[2] == pytest.approx(0.0225, abs=0.005)  # back on the table


def test_closing_on_nothing_grasps_nothing(world):
    move_tcp(world, [0.45, 0.2, 0.2])
    assert world.set_gripper(True) == (False, 'closed on nothing')
    assert world.held_object is None
    before = world.object_poses()
    move_tcp(world, [0.45, 0.0, 0.3])
    after = world.object_poses()
    for n in before:
        np.testing.assert_allclose(after[n].position, before[n].position, atol=0.002)


def test_set_object_pose_moves_a_free_object_and_refuses_a_held_one(world):
    world.set_object_pose('green_cube', [0.5, 0.2, 0.1])
    world.step(0.8)
    p = world.object_poses()['green_cube'].position
    np.testing.assert_allclose(p, [0.5, 0.2, 0.0225], atol=0.005)  # fell onto the table there
    move_tcp(world, p)
    world.set_gripper(True)
    held = world.object_poses()['green_cube'].position
    with pytest.raises(ValueError, match='green_cube is held by the gripper'):
        world.set_object_pose('green_cube', [0.3, -0.3, 0.0225])
    world.step(0.2)
    np.testing.assert_allclose(world.object_poses()['green_cube'].position, held, atol=0.005)
    with pytest.raises(KeyError, match='unknown object'):
        world.set_object_pose('teapot', [0.3, 0, 0.1])
    with pytest.raises(ValueError, match='unit quaternion'):
        world.set_object_pose('red_cube', [0.3, 0, 0.1], [0, 0, 0, 0])
