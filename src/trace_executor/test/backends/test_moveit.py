"""The moveit backend: a clear refusal where MoveIt is missing, real MoveIt where it is installed.

Here (no moveit_msgs on PyPI) the backend must refuse to start with a message that says what is
missing and where to get it. Its behaviour is tested here against a move_group stand-in that
behaves as Jazzy's does (``trace_executor.testing.move_group``: the cancel is accepted and
ignored, ``trajectory_execution_event`` "stop" stops the execution, the Cartesian path's jump
thresholds are not applied) on a UR driver stand-in publishing ``joint_states`` over DDS: an
interrupt stops the arm part-way (through the event, or through the controller when move_group
misses the event) and the backend says so only once the joint states show it at rest; a path
with a joint flip is refused without moving. The ``ros_install`` tests run in the docker image
(ROS 2 Jazzy, MoveIt, the UR driver): they bring up the UR driver with mock hardware and
ur_moveit_config's move_group, and check that a trace executed through MoveIt ends where the
plan ends, that a collision object in MoveIt's planning scene makes the Cartesian path partial
and the motion is refused without moving the arm, and that an interrupt stops the arm part-way.
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
    joint_jumps,
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


def test_joint_jumps_names_the_flip_and_passes_a_continuous_path() -> None:
    q = np.linspace(Q_HOME, Q_HOME + 0.2, 40)
    assert joint_jumps(q, UR5_JOINT_NAMES, 0.3) == ''
    q[20:25, 3] += 3.0
    why = joint_jumps(q, UR5_JOINT_NAMES, 0.3)
    assert why.startswith("MoveIt's Cartesian path jumps 3.0") and 'wrist_1_joint' in why
    assert 'between points 19 and 20 of 40' in why and 'refused before moving' in why


# ------------------------------------------------------------------------------------------
# Against the move_group stand-in (Jazzy's behaviour) and the UR driver stand-in, over DDS
# ------------------------------------------------------------------------------------------
@pytest.fixture
def standin(planner: Ur5Planner) -> Iterator[Any]:
    """(make(honour_stop, flip_window) → (backend, move_group, driver))."""
    import uuid

    import rclpy
    from rclpy.context import Context
    from rclpy.executors import SingleThreadedExecutor

    from trace_executor.testing.move_group import MoveGroupStandIn
    from trace_executor.testing.ur_driver import UrDriverStandIn

    ctx = Context()
    rclpy.init(context=ctx)
    ns = f'/moveit_standin_{uuid.uuid4().hex[:8]}'  # relative names resolve under it
    driver_node = rclpy.create_node('ur_driver', namespace=ns, context=ctx)
    exec_node = rclpy.create_node('ur5_executor', namespace=ns, context=ctx)
    # One thread is enough (the backend blocks in the test's thread, never in a callback);
    # rclpy 7.1's MultiThreadedExecutor here slowed the driver stand-in's control loop to a
    # fifth of real time within 10 s (GIL), and the joint states went stale.
    executor = SingleThreadedExecutor(context=ctx)
    executor.add_node(driver_node)
    executor.add_node(exec_node)
    spin = threading.Thread(target=executor.spin, daemon=True)
    spin.start()
    made: list[Any] = []

    def make(**kwargs: Any) -> tuple[MoveItBackend, Any, Any]:
        driver = UrDriverStandIn(driver_node, UR5_JOINT_NAMES, Q_HOME)
        move_group = MoveGroupStandIn(driver_node, driver, planner, **kwargs)
        backend = MoveItBackend(
            exec_node, UR5_JOINT_NAMES, planner, move_group=move_group, stop_timeout_s=1.0
        )
        made.append(driver)
        deadline = time.monotonic() + 10
        while (
            backend.state.count == 0
            or backend.execution_event_pub.get_subscription_count() == 0
            or backend.controller_pub.get_subscription_count() == 0
        ):
            assert time.monotonic() < deadline, 'stand-ins not connected'
            time.sleep(0.02)
        return backend, move_group, driver

    try:
        yield make
    finally:
        for d in made:
            d.close()
        executor.shutdown(timeout_sec=2)
        spin.join(timeout=2)
        exec_node.destroy_node()
        driver_node.destroy_node()
        rclpy.try_shutdown(context=ctx)


def _follow_segment(planner: Ur5Planner, speed: float = 0.3) -> Any:
    plan = planner.plan(FOLLOW_TRACE, Q_HOME, mode='follow', speed_scale=speed)
    (seg,) = plan.motions
    return seg


def _once_moving(driver: Any, reason: str = 'canceled', after_s: float = 0.5) -> Any:
    """An interrupt that fires ``after_s`` after the arm started moving (planning time varies)."""
    started: list[float] = []

    def interrupt() -> str | None:
        if not started and float(np.abs(driver.state()[0] - Q_HOME).max()) > 0.005:
            started.append(time.monotonic())
        return reason if started and time.monotonic() > started[0] + after_s else None

    return interrupt


def _still(driver: Any, q: np.ndarray, wait_s: float = 0.5) -> bool:
    time.sleep(wait_s)
    return float(np.abs(driver.state()[0] - q).max()) < 1e-6


def test_standin_move_group_ignores_the_cancel_as_jazzy_does(
    standin: Any, planner: Ur5Planner
) -> None:
    """The premise: cancelling the goal alone lets the arm finish the trajectory."""
    backend, move_group, driver = standin()
    seg = _follow_segment(planner, speed=1.0)
    traj, why = backend._plan_segment(seg, Q_HOME)
    assert traj is not None, why
    goal = move_group.types.ExecuteTrajectory.Goal()
    goal.trajectory.joint_trajectory = traj
    handle = move_group.send_goal(goal).result()
    time.sleep(0.3)
    handle.cancel_goal_async()
    result = handle.get_result_async().result(timeout=move_group.duration(traj) + 5)
    assert result.result.error_code.val == move_group.types.MoveItErrorCodes.SUCCESS
    np.testing.assert_allclose(driver.state()[0], seg.positions_rad[-1], atol=0.02)


def test_interrupt_stops_the_arm_through_the_execution_event_and_confirms_it(
    standin: Any, planner: Ur5Planner
) -> None:
    backend, move_group, driver = standin()
    seg = _follow_segment(planner)
    res = backend.execute(seg, _once_moving(driver), lambda f: None)
    assert res.status is MotionStatus.STOPPED and res.reason == 'canceled', res.message
    assert move_group.goals[0].cancel_requests == 1 and move_group.events == ['stop']
    assert backend.last_stop.startswith('stopped by trajectory_execution_event')
    q = driver.state()[0]
    assert np.max(np.abs(q - seg.positions_rad[-1])) > 0.05  # stopped part-way ...
    assert np.max(np.abs(q - Q_HOME)) > 0.01  # ... after moving
    assert _still(driver, q)  # and stays there


def test_move_group_missing_the_stop_event_is_stopped_through_the_controller(
    standin: Any, planner: Ur5Planner
) -> None:
    backend, move_group, driver = standin(honour_stop=False)
    seg = _follow_segment(planner, speed=0.2)
    res = backend.execute(seg, _once_moving(driver), lambda f: None)
    assert res.status is MotionStatus.STOPPED, res.message
    assert backend.last_stop.startswith('stopped through scaled_joint_trajectory_controller')
    # the execution's trajectory, then the stop on the controller's own topic
    assert len(driver.received) == 2 and len(driver.received[1].points) == 1
    q = driver.state()[0]
    assert np.max(np.abs(q - seg.positions_rad[-1])) > 0.05
    assert _still(driver, q)


def test_an_arm_that_never_stops_is_reported_failed_not_stopped(
    standin: Any, planner: Ur5Planner
) -> None:
    backend, move_group, driver = standin(honour_stop=False)
    driver.sub.callback = lambda msg: None  # a controller deaf to its topic too
    seg = _follow_segment(planner, speed=0.3)
    res = backend.execute(seg, _once_moving(driver, after_s=1.0), lambda f: None)
    assert res.status is MotionStatus.FAILED
    assert res.message.startswith('canceled: the arm did not stop: ') and 'rad/s' in res.message


def test_halt_stops_the_running_motion_and_refuses_later_ones(
    standin: Any, planner: Ur5Planner
) -> None:
    backend, move_group, driver = standin()
    seg = _follow_segment(planner)
    out: dict[str, Any] = {}
    th = threading.Thread(
        target=lambda: out.update(res=backend.execute(seg, lambda: None, lambda f: None))
    )
    th.start()
    moving = _once_moving(driver)
    deadline = time.monotonic() + 20
    while not moving():
        assert time.monotonic() < deadline, 'the arm never moved'
        time.sleep(0.01)
    backend.halt('executor shutting down (SIGTERM)')
    th.join(timeout=5)
    assert out['res'].status is MotionStatus.STOPPED
    assert out['res'].reason == 'executor shutting down (SIGTERM)'
    q = driver.state()[0]
    assert np.max(np.abs(q - seg.positions_rad[-1])) > 0.05 and _still(driver, q)
    n = len(move_group.goals)
    res = backend.execute(_follow_segment(planner), lambda: None, lambda f: None)
    assert res.status is MotionStatus.STOPPED and len(move_group.goals) == n


def test_a_joint_flip_in_moveits_path_is_refused_without_moving(
    standin: Any, planner: Ur5Planner
) -> None:
    backend, move_group, driver = standin(flip_window=(0.4, 0.6))
    seg = _follow_segment(planner)
    res = backend.execute(seg, lambda: None, lambda f: None)
    assert res.status is MotionStatus.FAILED
    assert res.message.startswith("not executed: MoveIt's Cartesian path jumps "), res.message
    assert move_group.goals == [] and driver.received == []
    assert _still(driver, Q_HOME, 0.2)


def test_standin_follow_trace_ends_where_the_plan_ends(standin: Any, planner: Ur5Planner) -> None:
    backend, move_group, driver = standin()
    runner = GoalRunner(planner, backend)
    goal = validate_goal(
        GoalSpec(trace=TraceInput(FOLLOW_TRACE, 'base_link'), mode='follow', replanning=False),
        'pick_place',
        0.8,
    )
    out = runner.run(goal, lambda: False)
    assert out.success, out.message
    np.testing.assert_allclose(driver.state()[0], out.plan.final_positions_rad, atol=0.02)


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
        lambda: b.move_group.wait_for_planner(1.0),
        90,
        moveit_stack,
    )
    _wait(
        'MoveIt /execute_trajectory',
        lambda: b.move_group.wait_for_executor(1.0),
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
