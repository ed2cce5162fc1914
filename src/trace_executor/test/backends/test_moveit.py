"""The moveit backend: a clear refusal where MoveIt is missing, real MoveIt where it is installed.

Here (no moveit_msgs on PyPI) the backend must refuse to start with a message that says what is
missing and where to get it. The ``ros_install`` tests run in the docker image (ROS 2 Jazzy,
MoveIt, the UR driver): they bring up the UR driver with mock hardware and ur_moveit_config's
move_group, and check that a trace executed through MoveIt ends where the plan ends, that a
collision object in MoveIt's planning scene makes the Cartesian path partial and the motion is
refused without moving the arm, and that an interrupt stops the arm part-way.
"""

from __future__ import annotations

from collections.abc import Iterator
import importlib.util
import math
import os
from pathlib import Path
import signal
import subprocess
import threading
import time
from typing import Any

import numpy as np
import pytest

from trace_executor.backends.moveit import (
    MOVEIT_MISSING,
    MoveItBackend,
    point_along,
    stretch_timing,
)
from trace_executor.execution import (
    BackendError,
    GoalRunner,
    GoalSpec,
    MotionStatus,
    TraceInput,
    validate_goal,
)
from trace_executor.ur5 import UR5_HOME, UR5_JOINT_NAMES, Ur5Planner

Q_HOME = np.array(UR5_HOME)
FOLLOW_TRACE = np.array(
    [[0.40 + 0.15 * math.cos(a), 0.15 * math.sin(a), 0.12] for a in np.linspace(0, math.pi, 10)]
)


@pytest.fixture(scope='module')
def planner() -> Ur5Planner:
    return Ur5Planner()


def test_refuses_to_start_without_moveit(planner: Ur5Planner) -> None:
    if importlib.util.find_spec('moveit_msgs') is not None:
        pytest.skip('moveit_msgs is installed here: the refusal cannot happen')
    with pytest.raises(BackendError) as err:
        MoveItBackend(None, UR5_JOINT_NAMES, planner)  # fails before touching the node
    message = str(err.value)
    assert message.startswith(
        'moveit backend needs moveit_msgs / a MoveIt install (use the docker image): '
    )
    assert message.startswith(MOVEIT_MISSING) and 'moveit_msgs' in message.split(': ', 1)[1]


def test_moveit_timing_is_never_faster_than_the_plan() -> None:
    times, factor = stretch_timing(np.array([0.0, 0.5, 1.0]), 2.0)
    np.testing.assert_allclose(times, [0.0, 1.0, 2.0])
    assert factor == 2.0
    times, factor = stretch_timing(np.array([0.0, 1.5, 3.0]), 2.0)
    np.testing.assert_allclose(times, [0.0, 1.5, 3.0])
    assert factor == 1.0


def test_point_along_a_path() -> None:
    path = np.array([[0.0, 0, 0], [1.0, 0, 0], [1.0, 1.0, 0]])
    np.testing.assert_allclose(point_along(path, 0.0), [0, 0, 0])
    np.testing.assert_allclose(point_along(path, 0.75), [1.0, 0.5, 0])
    np.testing.assert_allclose(point_along(path, 1.0), [1.0, 1.0, 0])


# ------------------------------------------------------------------------------------------
# With a real MoveIt (docker image): UR driver on mock hardware + ur_moveit_config move_group
# ------------------------------------------------------------------------------------------
TRAJECTORY_TOPIC = '/scaled_joint_trajectory_controller/joint_trajectory'
STACK = [
    [
        'ros2',
        'launch',
        'ur_robot_driver',
        'ur_control.launch.py',
        'ur_type:=ur5',
        'robot_ip:=127.0.0.1',
        'use_mock_hardware:=true',
        'launch_rviz:=false',
    ],
    [
        'ros2',
        'launch',
        'ur_moveit_config',
        'ur_moveit.launch.py',
        'ur_type:=ur5',
        'launch_rviz:=false',
    ],
]


@pytest.fixture(scope='module')
def moveit_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    logs = tmp_path_factory.mktemp('moveit_stack')
    procs = []
    for n, cmd in enumerate(STACK):
        out = open(logs / f'{n}.log', 'w')  # noqa: SIM115 (closed with the process)
        procs.append(
            (
                subprocess.Popen(
                    cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
                ),
                out,
            )
        )
    try:
        yield logs
    finally:
        for p, _ in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGINT)
        for p, out in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=5)
            out.close()


@pytest.fixture(scope='module')
def ros_node(moveit_stack: Path) -> Iterator[Any]:
    import rclpy
    from rclpy.executors import MultiThreadedExecutor

    rclpy.init()
    node = rclpy.create_node('moveit_backend_test')
    executor = MultiThreadedExecutor(num_threads=4)
    executor.add_node(node)
    thread = threading.Thread(target=executor.spin, daemon=True)
    thread.start()
    try:
        yield node
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown()


def _wait(what: str, ok: Any, timeout_s: float, logs: Path | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if ok():
            return
        time.sleep(0.2)
    tail = ''
    if logs is not None:
        tail = '\n'.join(p.read_text()[-2000:] for p in sorted(logs.glob('*.log')))
    pytest.fail(f'timed out waiting for {what}\n{tail}')


def _joint_state_ok(backend: MoveItBackend) -> bool:
    try:
        backend.joint_positions()
    except BackendError:
        return False
    return True


def move_to(node: Any, backend: MoveItBackend, q: np.ndarray, duration_s: float = 5.0) -> None:
    """Put the arm at ``q`` with a plain trajectory on the controller (test setup only)."""
    from builtin_interfaces.msg import Duration
    from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

    pub = node.create_publisher(JointTrajectory, TRAJECTORY_TOPIC, 10)
    _wait('the trajectory controller', lambda: pub.get_subscription_count() > 0, 30)
    msg = JointTrajectory(joint_names=list(UR5_JOINT_NAMES))
    msg.points = [
        JointTrajectoryPoint(
            positions=[float(v) for v in q],
            velocities=[0.0] * 6,
            time_from_start=Duration(sec=int(duration_s)),
        )
    ]
    pub.publish(msg)
    _wait(
        f'the arm at {q}',
        lambda: float(np.abs(backend.joint_positions() - q).max()) < 0.005,
        duration_s + 10,
    )
    node.destroy_publisher(pub)


@pytest.fixture(scope='module')
def backend(ros_node: Any, planner: Ur5Planner, moveit_stack: Path) -> MoveItBackend:
    b = MoveItBackend(ros_node, UR5_JOINT_NAMES, planner)
    _wait('joint states', lambda: _joint_state_ok(b), 90, moveit_stack)
    _wait(
        'MoveIt /compute_cartesian_path',
        lambda: b.cartesian_client.wait_for_service(timeout_sec=1.0),
        90,
        moveit_stack,
    )
    _wait(
        'MoveIt /execute_trajectory',
        lambda: b.execute_client.wait_for_server(timeout_sec=1.0),
        60,
        moveit_stack,
    )
    return b


@pytest.mark.ros_install
@pytest.mark.slow
def test_moveit_executes_a_follow_trace_to_the_planned_end(
    ros_node: Any, backend: MoveItBackend, planner: Ur5Planner
) -> None:
    move_to(ros_node, backend, Q_HOME)
    runner = GoalRunner(planner, backend)
    goal = validate_goal(
        GoalSpec(trace=TraceInput(FOLLOW_TRACE, 'base_link'), mode='follow', replanning=False),
        'pick_place',
        0.5,
    )
    out = runner.run(goal, lambda: False)
    assert out.success, out.message
    q = backend.joint_positions()
    np.testing.assert_allclose(q, out.plan.final_positions_rad, atol=0.02)
    assert np.linalg.norm(planner.forward_tcp(q)[:3, 3] - FOLLOW_TRACE[-1]) < 0.01


def _blocker(ros_node: Any, center: np.ndarray, add: bool) -> None:
    from geometry_msgs.msg import Pose
    from moveit_msgs.msg import CollisionObject, PlanningScene
    from moveit_msgs.srv import ApplyPlanningScene
    from shape_msgs.msg import SolidPrimitive

    client = ros_node.create_client(ApplyPlanningScene, '/apply_planning_scene')
    assert client.wait_for_service(timeout_sec=30.0)
    obj = CollisionObject(id='robotracer_test_blocker')
    obj.header.frame_id = 'base_link'
    obj.operation = CollisionObject.ADD if add else CollisionObject.REMOVE
    if add:
        obj.primitives = [SolidPrimitive(type=SolidPrimitive.BOX, dimensions=[0.08, 0.08, 0.08])]
        pose = Pose()
        pose.position.x, pose.position.y, pose.position.z = (float(v) for v in center)
        pose.orientation.w = 1.0
        obj.primitive_poses = [pose]
    scene = PlanningScene(is_diff=True)
    scene.world.collision_objects = [obj]
    future = client.call_async(ApplyPlanningScene.Request(scene=scene))
    _wait('the planning scene update', future.done, 10)
    assert future.result().success
    ros_node.destroy_client(client)


@pytest.mark.ros_install
@pytest.mark.slow
def test_a_collision_in_moveits_scene_refuses_the_partial_path_without_moving(
    ros_node: Any, backend: MoveItBackend, planner: Ur5Planner
) -> None:
    move_to(ros_node, backend, Q_HOME)
    plan = planner.plan(FOLLOW_TRACE, Q_HOME, mode='follow', speed_scale=0.5)
    (seg,) = plan.motions
    # a box the planner does not know about, on the planned tool path half-way
    middle = planner.forward_tcp(seg.positions_rad[len(seg.positions_rad) // 2])[:3, 3]
    _blocker(ros_node, middle, add=True)
    try:
        res = backend.execute(seg, lambda: None, lambda f: None)
    finally:
        _blocker(ros_node, middle, add=False)
    assert res.status is MotionStatus.FAILED
    assert 'MoveIt computed only' in res.message and 'waypoints' in res.message, res.message
    np.testing.assert_allclose(backend.joint_positions(), Q_HOME, atol=0.005)


@pytest.mark.ros_install
@pytest.mark.slow
def test_an_interrupt_cancels_the_moveit_execution(
    ros_node: Any, backend: MoveItBackend, planner: Ur5Planner
) -> None:
    move_to(ros_node, backend, Q_HOME)
    plan = planner.plan(FOLLOW_TRACE, Q_HOME, mode='follow', speed_scale=0.3)
    (seg,) = plan.motions
    t_go = time.monotonic() + 1.5
    res = backend.execute(
        seg, lambda: 'canceled' if time.monotonic() > t_go else None, lambda f: None
    )
    assert res.status is MotionStatus.STOPPED and res.reason == 'canceled'
    time.sleep(1.0)
    q = backend.joint_positions()
    assert np.max(np.abs(q - seg.positions_rad[-1])) > 0.05  # stopped part-way ...
    assert np.max(np.abs(q - Q_HOME)) > 0.01  # ... after moving
    q2 = backend.joint_positions()
    time.sleep(0.5)
    assert np.max(np.abs(backend.joint_positions() - q2)) < 0.005  # and stays there
