"""The simulated UR5 settles on its goal well inside the executor's tolerance (0.02 rad).

Carrying each object of the shipped scene along a timed trajectory (velocities given, as the
executor sends them) to a stretched-out pose, the arm must end within 5 mrad of the goal on
every joint and stay there; a held object pressed into the table must not hold it off either.
"""

from __future__ import annotations

import mujoco
import numpy as np
import pytest

from robotracer_sim.ur5.scene import default_scene_path, load_scene
from robotracer_sim.ur5.world import Ur5World

SETTLED_RAD = 0.005
DOWN = np.diag([1.0, -1.0, -1.0])  # tool z pointing down


@pytest.fixture(scope='module')
def world() -> Ur5World:
    w = Ur5World(default_scene_path())
    yield w
    w.close()


def tcp_ik(world: Ur5World, target, q0: np.ndarray) -> np.ndarray:
    """Joints putting the TCP at ``target`` pointing down (damped least squares)."""
    m, d = world.model, mujoco.MjData(world.model)
    q, target = q0.copy(), np.asarray(target, dtype=float)
    for _ in range(300):
        d.qpos[world.info.arm_qpos] = q
        mujoco.mj_kinematics(m, d)
        mujoco.mj_comPos(m, d)
        p = d.site_xpos[world.info.tcp_site]
        r = d.site_xmat[world.info.tcp_site].reshape(3, 3)
        e = np.concatenate(
            [target - p, 0.5 * sum(np.cross(r[:, i], DOWN[:, i]) for i in range(3))]
        )
        if np.linalg.norm(e) < 1e-7:
            return q
        jp, jr = np.zeros((3, m.nv)), np.zeros((3, m.nv))
        mujoco.mj_jacSite(m, d, jp, jr, world.info.tcp_site)
        j = np.vstack([jp, jr])[:, world.info.arm_dof]
        q = q + j.T @ np.linalg.solve(j @ j.T + 1e-4 * np.eye(6), e)
    raise AssertionError(f'IK did not converge for {target} (residual {np.linalg.norm(e):.2g})')


def move(world: Ur5World, q: np.ndarray, duration: float) -> None:
    world.set_trajectory(world.joint_names, [duration], [q])
    world.step(duration + 0.3)


def hold_object(world: Ur5World, name: str) -> None:
    """Put ``name`` in the gripper in free space (no contact with anything)."""
    world.reset()
    world.step(0.2)
    move(world, tcp_ik(world, (0.4, -0.1, 0.3), world.joint_positions()), 1.0)
    world.set_object_pose(name, world.tcp_pose()[:3, 3])
    ok, message = world.set_gripper(True)
    assert ok and world.held_object == name, message
    world.step(0.3)


@pytest.mark.parametrize('name', load_scene(default_scene_path()).names)
def test_carrying_each_object_the_arm_ends_within_5_mrad_of_the_goal(world, name):
    hold_object(world, name)
    q0 = world.joint_positions()
    mid = tcp_ik(world, (0.6, 0.15, 0.35), q0)
    far = tcp_ik(world, (0.7, 0.3, 0.2), mid)  # reaching out: a long lever for the load
    v_mid = (far - q0) / 2.5  # pass the middle waypoint moving, as a timed trajectory does
    world.set_trajectory(world.joint_names, [1.2, 2.5], [mid, far], [v_mid, np.zeros(6)])
    world.step(1.2)
    assert np.abs(world.tracking_error()).max() < 0.05, 'tracking on the way'
    world.step(1.3 + 0.3)  # 0.3 s after the trajectory's end
    err = np.abs(world.joint_positions() - far)
    assert world.held_object == name
    assert err.max() < SETTLED_RAD, f'{world.joint_names[int(err.argmax())]}: {err.max():.4f} rad'
    world.step(1.0)  # and it stays there
    err = np.abs(world.joint_positions() - far)
    assert err.max() < SETTLED_RAD, f'{world.joint_names[int(err.argmax())]}: {err.max():.4f} rad'
    assert np.abs(world.joint_velocities()).max() < 0.01


def test_a_held_object_pressed_into_the_table_does_not_hold_the_arm_off_its_goal(world):
    world.reset()
    world.step(0.2)
    cube = world.object_poses(['red_cube'])['red_cube'].position
    move(world, tcp_ik(world, cube + [0, 0, 0.1], world.joint_positions()), 1.5)
    move(world, tcp_ik(world, cube, world.joint_positions()), 1.0)
    assert world.set_gripper(True)[0]
    move(world, tcp_ik(world, cube + [0, 0, 0.1], world.joint_positions()), 1.0)
    low = tcp_ik(world, cube - [0, 0, 0.01], world.joint_positions())  # 1 cm into the table
    move(world, low, 1.0)
    world.step(0.7)
    err = np.abs(world.joint_positions() - low)
    assert err.max() < SETTLED_RAD, f'{world.joint_names[int(err.argmax())]}: {err.max():.4f} rad'
