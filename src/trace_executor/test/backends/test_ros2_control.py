"""ros2_control backend: the bounded, reported settle wait at the end of a trajectory, and halt.

The settle check (:class:`SettleCheck`) is tested on its own, then the backend against a fake
joint trajectory controller in the same process (real rclpy, real DDS): a controller that
settles late, one that never reaches the goal, and a halt in the middle of a motion.
"""

from __future__ import annotations

from dataclasses import dataclass
import re
import threading
import time
import uuid

import numpy as np
import pytest

pytest.importorskip('rclpy')

import rclpy  # noqa: E402
from rclpy.context import Context  # noqa: E402
from rclpy.executors import MultiThreadedExecutor  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402
from trajectory_msgs.msg import JointTrajectory  # noqa: E402

from trace_executor.backends.ros2_control import (  # noqa: E402
    Ros2ControlBackend,
    SettleCheck,
)
from trace_executor.execution import MotionStatus  # noqa: E402

JOINTS = (
    'shoulder_pan_joint',
    'shoulder_lift_joint',
    'elbow_joint',
    'wrist_1_joint',
    'wrist_2_joint',
    'wrist_3_joint',
)
HOME = np.array([0.0, -1.57, 1.57, -1.57, -1.57, 0.0])


# ----------------------------------------------------------------------------- SettleCheck


def test_settle_check_waits_then_reports_how_long_it_took():
    goal = HOME.copy()
    check = SettleCheck(JOINTS, goal, 0.02, 0.02, 1.0)
    off = goal + np.array([0, 0.03, 0, 0, 0, 0])
    assert check.update(0.0, off, np.zeros(6)) is None  # outside the tolerance: wait
    assert check.update(0.1, goal, np.full(6, 0.1)) is None  # inside, but still moving
    report = check.update(0.25, goal + 0.001, np.zeros(6))
    assert report is not None and report.settled
    assert report.wait_s == pytest.approx(0.25)
    assert report.describe().startswith('settled in 0.25 s')


def test_settle_check_gives_up_after_the_bound_naming_joint_error_and_tolerance():
    check = SettleCheck(JOINTS, HOME, 0.02, 0.02, 0.5)
    off = HOME + np.array([0, 0, 0, 0.023, 0, 0])
    assert check.update(0.5, off, np.zeros(6)) is None
    report = check.update(0.51, off, np.array([0, 0, 0, 0.004, 0, 0]))
    assert report is not None and not report.settled
    text = report.describe()
    assert text.startswith('wrist_1_joint ended 0.023 rad from the goal (tolerance 0.02 rad)')
    assert 'after waiting 0.51 s' in text and 'bound 0.5 s' in text and '0.004 rad/s' in text


# ----------------------------------------------------------------------------- fake JTC


@dataclass
class Behaviour:
    """How the fake controller ends a trajectory: it reaches the goal ``offset`` short (rad,
    per joint), and that offset decays with time constant ``tau_s`` (inf: never)."""

    offset: np.ndarray
    tau_s: float


class FakeController:
    """A joint trajectory controller: linear motion to the last point, then ``behaviour``."""

    def __init__(self, node, topic: str, states: str) -> None:
        self.node = node
        self.lock = threading.Lock()
        self.q0 = HOME.copy()
        self.goal = HOME.copy()
        self.t0 = self.t_end = time.monotonic()
        self.behaviour = Behaviour(np.zeros(6), 0.0)
        self.received: list[JointTrajectory] = []
        self.rejected: list[str] = []
        #: stop publishing joint states (a driver whose state stream is lost)
        self.mute = False
        self.pub = node.create_publisher(JointState, states, 10)
        node.create_subscription(JointTrajectory, topic, self._on_trajectory, 10)
        node.create_timer(0.01, self._publish)

    def state(self, now: float) -> tuple[np.ndarray, np.ndarray]:
        with self.lock:
            if now < self.t_end:
                f = (now - self.t0) / max(self.t_end - self.t0, 1e-9)
                v = (self.goal - self.q0) / max(self.t_end - self.t0, 1e-9)
                return self.q0 + f * (self.goal - self.q0), v
            b = self.behaviour
            if b.tau_s <= 0.0:
                return self.goal.copy(), np.zeros(6)
            decay = np.exp(-(now - self.t_end) / b.tau_s)
            return self.goal + b.offset * decay, -b.offset * decay / b.tau_s

    def _on_trajectory(self, msg: JointTrajectory) -> None:
        now = time.monotonic()
        q, _ = self.state(now)
        self.received.append(msg)
        if not msg.points:  # as Jazzy's JTC: rejected, the running trajectory goes on
            self.rejected.append('Empty trajectory received.')
            return
        with self.lock:
            self.q0 = q
            last = msg.points[-1]
            dur = last.time_from_start.sec + last.time_from_start.nanosec * 1e-9
            self.goal = np.array(last.positions, dtype=float)
            self.t0, self.t_end = now, now + dur

    def _publish(self) -> None:
        if self.mute:
            return
        q, v = self.state(time.monotonic())
        msg = JointState(name=list(JOINTS), position=q.tolist(), velocity=v.tolist())
        msg.header.stamp = self.node.get_clock().now().to_msg()
        self.pub.publish(msg)


@dataclass
class Segment:
    times_s: np.ndarray
    positions_rad: np.ndarray
    velocities_rad_s: np.ndarray
    accelerations_rad_s2: np.ndarray


def segment(goal: np.ndarray, duration_s: float, start: np.ndarray = HOME) -> Segment:
    times = np.linspace(0.0, duration_s, 11)
    qs = start + np.outer(times / duration_s, goal - start)
    z = np.zeros_like(qs)
    return Segment(times, qs, z, z)


@pytest.fixture
def rig():
    ctx = Context()
    rclpy.init(context=ctx)
    suffix = uuid.uuid4().hex[:8]
    topic, states = f'/settle_test_{suffix}/joint_trajectory', f'/settle_test_{suffix}/states'
    ctrl_node = rclpy.create_node(f'fake_jtc_{suffix}', context=ctx)
    exec_node = rclpy.create_node(f'settle_backend_{suffix}', context=ctx)
    controller = FakeController(ctrl_node, topic, states)
    backend = Ros2ControlBackend(
        exec_node,
        JOINTS,
        trajectory_topic=topic,
        joint_states_topic=states,
        goal_tolerance_rad=0.02,
        goal_time_tolerance_s=0.5,
        stopped_velocity_tolerance_rad_s=0.02,
        state_timeout_s=2.0,  # in-process stand-ins pause up to 0.7 s on a busy 2-core machine
    )
    executor = MultiThreadedExecutor(num_threads=3, context=ctx)
    executor.add_node(ctrl_node)
    executor.add_node(exec_node)
    spin = threading.Thread(target=executor.spin, daemon=True)
    spin.start()
    deadline = time.monotonic() + 10
    while backend.state.count == 0 or backend.pub.get_subscription_count() == 0:
        assert time.monotonic() < deadline, 'fake controller not connected'
        time.sleep(0.02)
    yield controller, backend
    executor.shutdown(timeout_sec=2)
    spin.join(timeout=2)
    exec_node.destroy_node()
    ctrl_node.destroy_node()
    rclpy.try_shutdown(context=ctx)


def no_interrupt() -> str | None:
    return None


def test_arm_that_settles_late_succeeds_and_the_wait_is_reported(rig):
    controller, backend = rig
    controller.behaviour = Behaviour(np.array([0, 0.05, 0, 0, 0, 0]), 0.1)
    backend.goal_time_tolerance_s = 3.0  # generous: only the reported wait matters here
    goal = HOME + np.array([0.2, -0.1, 0.1, 0.0, 0.0, 0.1])
    res = backend.execute(segment(goal, 0.5), no_interrupt, lambda _f: None)
    assert res.status is MotionStatus.DONE, res.message
    report = backend.last_settle
    assert report is not None and report.settled
    # error 0.05 e^(-t/0.1) <= 0.02 and speed 0.5 e^(-t/0.1) <= 0.02: t >= 0.32 s
    assert 0.2 <= report.wait_s <= 1.5  # (slack for a loaded machine)
    assert res.message.startswith(f'settled in {report.wait_s:.2f} s')
    assert report.error_rad <= 0.02


def test_arm_that_never_reaches_the_goal_fails_after_the_bounded_wait(rig):
    controller, backend = rig
    controller.behaviour = Behaviour(np.array([0, 0.03, 0, 0, 0, 0]), float('inf'))
    goal = HOME + np.array([0.1, 0.0, 0.0, 0.0, 0.0, 0.0])
    t0 = time.monotonic()
    res = backend.execute(segment(goal, 0.5), no_interrupt, lambda _f: None)
    took = time.monotonic() - t0
    assert res.status is MotionStatus.FAILED
    assert 0.5 + 0.5 <= took <= 0.5 + 0.5 + 2.0, f'took {took:.2f} s'  # duration + bound
    # shoulder_lift_joint 0.030 rad off; on a starved machine the joint states arrive late and
    # another joint may still be the farthest when the bound ends: the reason names it
    assert re.match(
        r'\w+_joint ended 0\.\d+ rad from the goal \(tolerance 0.02 rad\) after waiting',
        res.message,
    ), res.message
    assert 'bound 0.5 s' in res.message
    assert backend.last_settle is not None and not backend.last_settle.settled


def test_a_controller_topic_without_subscriber_fails_at_once_and_sends_nothing(rig):
    """The controller is not running (or listens elsewhere): the goal fails naming the topic,
    instead of waiting for a motion that never comes; the arm (on its own controller) stays."""
    controller, backend = rig
    orphan = Ros2ControlBackend(
        backend.node,
        JOINTS,
        trajectory_topic=backend.trajectory_topic + '_nobody',
        joint_states_topic=controller.pub.topic_name,
    )
    deadline = time.monotonic() + 10
    while orphan.state.count == 0:
        assert time.monotonic() < deadline, 'no joint states'
        time.sleep(0.02)
    before = len(controller.received)
    t0 = time.monotonic()
    res = orphan.execute(segment(HOME + 0.1, 0.5), no_interrupt, lambda _f: None)
    assert time.monotonic() - t0 < 0.5
    assert res.status is MotionStatus.FAILED, res
    assert res.message.startswith(f'no controller subscribes to {orphan.pub.topic_name}')
    assert len(controller.received) == before
    q, _ = orphan.state.get(1.0)
    assert np.allclose(q, HOME, atol=1e-6), 'the arm did not move'


def test_lost_joint_state_mid_motion_holds_the_arm_on_its_path_not_at_the_goal(rig):
    """The joint states stop halfway through a 3 s motion: the motion fails naming the lost
    state, and the arm stops where the commanded path has it then (a one-point trajectory the
    controller accepts; Jazzy's JTC rejects an empty one and the arm would run to the goal)."""
    controller, backend = rig
    backend.state_timeout_s = 0.3
    goal = HOME + np.array([1.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    timer = threading.Timer(1.0, lambda: setattr(controller, 'mute', True))
    timer.start()
    try:
        res = backend.execute(segment(goal, 3.0), no_interrupt, lambda _f: None)
    finally:
        timer.cancel()
    assert res.status is MotionStatus.FAILED and 'joint state' in res.message, res.message
    deadline = time.monotonic() + 3.0
    while len(controller.received) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert controller.rejected == [], 'nothing the controller rejects was sent'
    assert len(controller.received) == 2, 'the motion, then a hold'
    assert len(controller.received[-1].points) == 1
    time.sleep(0.8)  # the hold trajectory (0.5 s) runs out
    q, _ = controller.state(time.monotonic())
    assert 0.2 < q[0] - HOME[0] < 0.8, f'stopped on the path, short of the goal: {q[0]:.2f}'
    assert np.allclose(q[1:], HOME[1:], atol=1e-6), 'along the commanded path only'


def test_halt_stops_the_running_motion_and_refuses_later_ones(rig):
    controller, backend = rig
    goal = HOME + np.array([1.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    out: dict = {}

    def run() -> None:
        out['res'] = backend.execute(segment(goal, 3.0), no_interrupt, lambda _f: None)
        out['t'] = time.monotonic()

    th = threading.Thread(target=run)
    th.start()
    time.sleep(0.8)
    n_before = len(controller.received)
    t_halt = time.monotonic()
    assert backend.halt('executor shutting down (SIGTERM)')  # the controller acknowledged
    th.join(timeout=2.0)
    res = out['res']
    assert res.status is MotionStatus.STOPPED and res.reason == 'executor shutting down (SIGTERM)'
    assert out['t'] - t_halt < 1.0  # the motion returns at its next control tick
    deadline = time.monotonic() + 2.0
    while len(controller.received) <= n_before:  # acknowledged; the callback may lag
        assert time.monotonic() < deadline, 'the controller never got the stop'
        time.sleep(0.01)
    stop = controller.received[n_before]
    q_stop = np.array(stop.points[-1].positions)
    assert abs(q_stop[0] - HOME[0]) < 0.5  # held near where it was, not at the goal (+1 rad)
    time.sleep(0.3)
    q, v = controller.state(time.monotonic())
    assert np.abs(v).max() < 1e-6 and abs(q[0] - goal[0]) > 0.4
    # a later motion is refused at once and sends nothing
    n = len(controller.received)
    res = backend.execute(segment(HOME, 0.5, start=q), no_interrupt, lambda _f: None)
    assert res.status is MotionStatus.STOPPED and len(controller.received) == n


def test_waiting_for_the_stop_acknowledgement_does_not_freeze_the_other_threads(tmp_path):
    """rclpy's wait_for_all_acked holds the GIL: halt() froze the motion loop and every callback
    of the process for up to its 1 s ack wait (CI: the loop returned 1.65 s after halt). A
    subscriber that never acknowledges (its process stopped): the other thread keeps running."""
    import os
    import signal
    import subprocess
    import sys

    from std_msgs.msg import String

    from trace_executor.backends.ros2_control import wait_acked

    topic = f'/ack_{uuid.uuid4().hex[:8]}'
    code = (
        'import sys, time, threading, rclpy\n'
        'from std_msgs.msg import String\n'
        'rclpy.init(); n = rclpy.create_node("acker")\n'
        f'n.create_subscription(String, "{topic}", lambda m: None, 10)\n'
        'threading.Thread(target=rclpy.spin, args=(n,), daemon=True).start()\n'
        'print("up", flush=True); time.sleep(120)\n'
    )
    sub = subprocess.Popen([sys.executable, '-c', code], stdout=subprocess.PIPE, text=True)
    ctx = Context()
    rclpy.init(context=ctx)
    try:
        assert sub.stdout.readline().strip() == 'up'
        node = rclpy.create_node('ack_test', context=ctx)
        pub = node.create_publisher(String, topic, 10)
        deadline = time.monotonic() + 15
        while pub.get_subscription_count() < 1:
            assert time.monotonic() < deadline, 'the subscriber never matched'
            time.sleep(0.05)
        pub.publish(String(data='hello'))
        assert wait_acked(pub, 5.0), 'a live subscriber acknowledges'
        os.kill(sub.pid, signal.SIGSTOP)
        ticks, stop = [0], threading.Event()

        def count() -> None:
            while not stop.is_set():
                ticks[0] += 1
                time.sleep(0.001)

        th = threading.Thread(target=count)
        th.start()
        for _ in range(20):
            pub.publish(String(data='x' * 1000))
        t0 = time.monotonic()
        acked = wait_acked(pub, 0.5)
        waited = time.monotonic() - t0
        stop.set()
        th.join()
        assert not acked and 0.45 < waited < 2.0
        assert ticks[0] > 50, f'the other thread ran {ticks[0]} times in {waited:.2f} s'
    finally:
        sub.kill()
        sub.wait()
        rclpy.shutdown(context=ctx)


# ----------------------------------------------------------------------------- speed scaling


def test_scaled_clock_counts_trajectory_time_as_the_scaled_controller():
    from trace_executor.backends.ros2_control import ScaledClock

    factor = [1.0]
    clock = ScaledClock(lambda: factor[0])
    assert clock.tick(10.0) == 0.0
    assert clock.tick(10.5) == pytest.approx(0.5)
    factor[0] = 0.4
    assert clock.tick(11.5) == pytest.approx(0.9)
    factor[0] = 0.0  # paused (slider at 0 or a protective stop)
    assert clock.tick(13.0) == pytest.approx(0.9)
    assert clock.lowest == 0.0


@pytest.fixture
def driver_rig():
    """The backend against the UR driver stand-in (scaled JTC + speed scaling broadcaster)."""
    from trace_executor.testing.ur_driver import UrDriverStandIn

    ctx = Context()
    rclpy.init(context=ctx)
    ns = f'/scaling_test_{uuid.uuid4().hex[:8]}'  # the backend's default relative names
    driver_node = rclpy.create_node('ur_driver', namespace=ns, context=ctx)
    exec_node = rclpy.create_node('ur5_executor', namespace=ns, context=ctx)
    driver = UrDriverStandIn(driver_node, JOINTS, HOME)
    # The stand-in's joint states lag when its thread is starved (0.16-0.3 rad seen on a loaded
    # 2-core machine; the check compares with the desired state now, not at the state's stamp);
    # the real deviation below grows to 0.8 rad.
    backend = Ros2ControlBackend(exec_node, JOINTS, path_tolerance_rad=0.5, state_timeout_s=2.0)
    executor = MultiThreadedExecutor(num_threads=3, context=ctx)
    executor.add_node(driver_node)
    executor.add_node(exec_node)
    spin = threading.Thread(target=executor.spin, daemon=True)
    spin.start()
    deadline = time.monotonic() + 10
    while (
        backend.state.count == 0
        or backend.speed_scaling.count == 0
        or backend.pub.get_subscription_count() == 0
    ):
        assert time.monotonic() < deadline, 'driver stand-in not connected'
        time.sleep(0.02)
    yield driver, backend
    driver.close()
    executor.shutdown(timeout_sec=2)
    spin.join(timeout=2)
    exec_node.destroy_node()
    driver_node.destroy_node()
    rclpy.try_shutdown(context=ctx)


def test_slider_at_40_percent_runs_the_motion_slower_without_a_false_abort(driver_rig):
    driver, backend = driver_rig
    driver.set_slider(0.4)
    deadline = time.monotonic() + 2
    while backend.speed_scaling() > 0.41:
        assert time.monotonic() < deadline, 'speed scaling never arrived'
        time.sleep(0.02)
    goal = HOME + np.array([0.6, -0.3, 0.3, 0.0, 0.0, 0.3])
    t0 = time.monotonic()
    res = backend.execute(segment(goal, 1.0), no_interrupt, lambda _f: None)
    took = time.monotonic() - t0
    assert res.status is MotionStatus.DONE, res.message
    assert took >= 2.3, f'took {took:.2f} s'  # 1 s of trajectory at 40 %: 2.5 s
    np.testing.assert_allclose(driver.state()[0], goal, atol=0.02)


def test_slider_paused_mid_motion_then_released_completes(driver_rig):
    driver, backend = driver_rig
    goal = HOME + np.array([0.5, 0.0, 0.0, 0.0, 0.0, 0.0])

    def pause() -> None:
        time.sleep(0.4)
        driver.set_slider(0.0)
        time.sleep(1.0)
        driver.set_slider(1.0)

    th = threading.Thread(target=pause)
    th.start()
    res = backend.execute(segment(goal, 1.0), no_interrupt, lambda _f: None)
    th.join()
    assert res.status is MotionStatus.DONE, res.message
    np.testing.assert_allclose(driver.state()[0], goal, atol=0.02)


def test_a_real_deviation_is_still_caught_under_speed_scaling(driver_rig):
    driver, backend = driver_rig
    driver.set_slider(0.5)
    driver.sub.callback = lambda msg: None  # the arm does not follow at all
    goal = HOME + np.array([0.8, 0.0, 0.0, 0.0, 0.0, 0.0])
    res = backend.execute(segment(goal, 1.0), no_interrupt, lambda _f: None)
    assert res.status is MotionStatus.FAILED
    assert res.message.startswith('shoulder_pan_joint deviated') and 'speed scaling 50 %' in (
        res.message
    )
