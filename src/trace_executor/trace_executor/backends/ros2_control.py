"""``ros2_control`` backend: timed ``JointTrajectory`` on the joint trajectory controller's topic.

Design notes: docs/design-notes.md (trace_executor.backends.ros2_control).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
import threading
import time
from typing import Any

from builtin_interfaces.msg import Duration
import numpy as np
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.duration import Duration as RosDuration
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64
from std_srvs.srv import SetBool
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from robotracer_commander import wait_future
from trace_executor.execution import BackendError, Interrupt, MotionResult, MotionStatus


def _duration(t: float) -> Duration:
    sec = int(t)
    return Duration(sec=sec, nanosec=int(round((t - sec) * 1e9)))


class JointStateCache:
    """Latest joint positions/velocities for a set of joint names, from ``/joint_states``."""

    def __init__(self, joint_names: tuple[str, ...]) -> None:
        self.joint_names = tuple(joint_names)
        self._lock = threading.Condition()
        self._q: np.ndarray | None = None
        self._v = np.zeros(len(joint_names))
        self._t = 0.0
        self.count = 0

    def update(self, msg: JointState) -> None:
        """Take the joints we know from a JointState message (any order, any extra joints)."""
        index = {n: i for i, n in enumerate(msg.name)}
        if not all(n in index for n in self.joint_names):
            return
        q = np.array([msg.position[index[n]] for n in self.joint_names])
        v = (
            np.array([msg.velocity[index[n]] for n in self.joint_names])
            if len(msg.velocity) == len(msg.name)
            else np.zeros(len(self.joint_names))
        )
        with self._lock:
            self._q, self._v, self._t = q, v, time.monotonic()
            self.count += 1
            self._lock.notify_all()

    def get(self, max_age_s: float, first_wait_s: float = 3.0) -> tuple[np.ndarray, np.ndarray]:
        """(positions, velocities). Raises BackendError when none arrived or they are stale.

        Args:
            max_age_s: the newest sample may be this old.
            first_wait_s: before the first sample ever arrived (a node just started, its
                subscription still matching), wait this long for it.
        """
        with self._lock:
            if self._q is None:
                self._lock.wait_for(lambda: self._q is not None, timeout=first_wait_s)
            if self._q is None:
                raise BackendError(
                    f'no joint state received yet for {", ".join(self.joint_names)}'
                )
            age = time.monotonic() - self._t
            if age > max_age_s:
                raise BackendError(f'joint state is stale ({age:.2f} s old > {max_age_s} s)')
            return self._q.copy(), self._v.copy()


def wait_acked(pub: Any, timeout_s: float, poll_s: float = 0.005) -> bool:
    """Wait until every subscriber acknowledged what ``pub`` sent, without holding the GIL.

    rclpy's ``Publisher.wait_for_all_acked`` keeps the GIL for the whole wait: every other
    Python thread of the process (the motion loop, the node's callbacks) stands still until
    the acknowledgement or the timeout (measured: 1 tick of a 1 ms loop in a 1 s wait). So
    ask with a zero timeout and sleep in between.

    Returns:
        True once acknowledged, False on timeout or when the publisher cannot tell.
    """
    now = RosDuration(nanoseconds=0)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if pub.wait_for_all_acked(now):
                return True
        except Exception:  # noqa: BLE001 - best effort: the message was published
            return False
        if time.monotonic() >= deadline:
            return False
        time.sleep(poll_s)


def wait_until_rest(
    state: JointStateCache,
    state_timeout_s: float,
    timeout_s: float,
    period_s: float,
    speed_rad_s: float = 0.02,
) -> None:
    """Return once every joint moves slower than ``speed_rad_s``, state is stale, or timeout."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            _, v = state.get(state_timeout_s)
        except BackendError:
            return
        if float(np.abs(v).max()) < speed_rad_s:
            return
        time.sleep(period_s)


def call_gripper(client: Any, service: str, request: Any, timeout_s: float) -> tuple[bool, str]:
    """Call a std_srvs/SetBool gripper service. Returns (success, its message or the failure)."""
    if not client.wait_for_service(timeout_sec=2.0):
        return False, f'gripper service {service} is not available'
    res = wait_future(client.call_async(request), timeout_s)
    if res is None:
        return False, f'gripper service {service} did not answer in {timeout_s} s'
    return bool(res.success), str(res.message)


class ScaledClock:
    """Trajectory time as a speed-scaled joint trajectory controller counts it (ROS-free).

    Args:
        scaling: () → the current speed scaling factor, 0-1.
    """

    def __init__(self, scaling: Callable[[], float]) -> None:
        self._scaling = scaling
        self.t = 0.0
        self._last: float | None = None
        self.lowest = 1.0

    def tick(self, now: float) -> float:
        """Advance to wall time ``now`` (s); the trajectory time (s)."""
        if self._last is not None:
            f = float(np.clip(self._scaling(), 0.0, 1.0))
            self.lowest = min(self.lowest, f)
            self.t += max(0.0, now - self._last) * f
        self._last = now
        return self.t


class SpeedScaling:
    """The latest speed scaling factor from the driver's broadcaster (percent → 0-1)."""

    def __init__(self) -> None:
        self.factor = 1.0
        self.count = 0

    def update(self, msg: Float64) -> None:
        """Take a ``speed_scaling_state_broadcaster/speed_scaling`` message (percent)."""
        value = float(msg.data)
        if np.isfinite(value):
            self.factor = float(np.clip(value / 100.0, 0.0, 1.0))
            self.count += 1

    def __call__(self) -> float:
        """The factor, 0-1 (1 until the driver published one)."""
        return self.factor


@dataclass(frozen=True)
class SettleReport:
    """How the arm came to rest at the end of a trajectory.

    Attributes:
        settled: every joint within the goal tolerance and slower than the stopped tolerance.
        wait_s: time from the trajectory's nominal end to that moment (or to giving up), s.
        joint: the joint with the largest goal error.
        error_rad: its error, rad.
        speed_rad_s: the largest joint speed at that moment, rad/s.
        tolerance_rad: the goal tolerance, rad.
        bound_s: the longest wait allowed (``goal_time_tolerance_s``), s.
    """

    settled: bool
    wait_s: float
    joint: str
    error_rad: float
    speed_rad_s: float
    tolerance_rad: float
    bound_s: float

    def describe(self) -> str:
        """One line for a log or an error message."""
        if self.settled:
            return (
                f'settled in {self.wait_s:.2f} s (largest error {self.error_rad:.4f} rad on '
                f'{self.joint}, tolerance {self.tolerance_rad:g} rad)'
            )
        return (
            f'{self.joint} ended {self.error_rad:.3f} rad from the goal (tolerance '
            f'{self.tolerance_rad:g} rad) after waiting {self.wait_s:.2f} s for the arm to settle '
            f'(bound {self.bound_s:g} s; fastest joint still at {self.speed_rad_s:.3f} rad/s)'
        )


class SettleCheck:
    """The goal check at the end of a trajectory (ROS-free: feed it states and times).

    Args:
        joint_names: joint names, in the order of the arrays given to :meth:`update`.
        goal: (J,) final positions of the trajectory, rad.
        tolerance_rad: largest joint error accepted at the goal, rad.
        stopped_speed_rad_s: every joint slower than this counts as stopped, rad/s.
        bound_s: longest wait after the trajectory's end, s.
    """

    def __init__(
        self,
        joint_names: tuple[str, ...],
        goal: np.ndarray,
        tolerance_rad: float,
        stopped_speed_rad_s: float,
        bound_s: float,
    ) -> None:
        self.joint_names = tuple(joint_names)
        self.goal = np.asarray(goal, dtype=float)
        self.tolerance_rad = float(tolerance_rad)
        self.stopped_speed_rad_s = float(stopped_speed_rad_s)
        self.bound_s = float(bound_s)

    def update(self, since_end_s: float, q: np.ndarray, v: np.ndarray) -> SettleReport | None:
        """Check one joint state taken ``since_end_s`` after the trajectory's end.

        Returns:
            A report once the arm settled or the bound passed; None while waiting.
        """
        err = np.abs(np.asarray(q, dtype=float) - self.goal)
        speed = float(np.max(np.abs(v))) if len(v) else 0.0
        j = int(err.argmax())
        settled = float(err[j]) <= self.tolerance_rad and speed <= self.stopped_speed_rad_s
        if not settled and since_end_s <= self.bound_s:
            return None
        return SettleReport(
            settled,
            max(0.0, since_end_s),
            self.joint_names[j],
            float(err[j]),
            speed,
            self.tolerance_rad,
            self.bound_s,
        )


class Ros2ControlBackend:
    """Send timed joint trajectories to a joint trajectory controller (see module docstring)."""

    name = 'ros2_control'

    def __init__(
        self,
        node: Node,
        joint_names: tuple[str, ...],
        *,
        trajectory_topic: str = 'scaled_joint_trajectory_controller/joint_trajectory',
        joint_states_topic: str = 'joint_states',
        gripper_service: str = 'robotracer/gripper',
        speed_scaling_topic: str = 'speed_scaling_state_broadcaster/speed_scaling',
        gripper: Any = None,
        state_timeout_s: float = 0.5,
        goal_tolerance_rad: float = 0.02,
        path_tolerance_rad: float = 0.5,
        goal_time_tolerance_s: float = 3.0,
        stopped_velocity_tolerance_rad_s: float = 0.02,
        stop_deceleration_rad_s2: float = 8.0,
        gripper_timeout_s: float = 5.0,
        control_period_s: float = 0.01,
    ) -> None:
        """Create the publisher, the joint state subscription and the gripper client.

        Args:
            node: the node to create them on (spun by its owner's executor).
            joint_names: the arm's joints, planner order.
            trajectory_topic: the controller's JointTrajectory topic.
            joint_states_topic: sensor_msgs/JointState topic.
            gripper_service: std_srvs/SetBool gripper service (true = close), used when no
                ``gripper`` adapter is given.
            speed_scaling_topic: the driver's speed scaling (std_msgs/Float64, percent); ''
                = none (scaling 1).
            gripper: a gripper adapter (``trace_executor.backends.grippers``) or None.
            state_timeout_s: joint states older than this are stale, s.
            goal_tolerance_rad: largest joint error accepted at the end of a motion, rad.
            path_tolerance_rad: deviation from the trajectory that aborts a motion, rad.
            goal_time_tolerance_s: longest wait after a trajectory's end for the arm to
                settle within the goal tolerance, s (the JTC's ``constraints.goal_time``).
            stopped_velocity_tolerance_rad_s: a joint slower than this counts as stopped,
                rad/s (the JTC's ``constraints.stopped_velocity_tolerance``).
            stop_deceleration_rad_s2: deceleration of a stop, rad/s^2.
            gripper_timeout_s: longest wait for the gripper service, s.
            control_period_s: period of the monitoring loop, s.
        """
        self.node = node
        self.joint_names = tuple(joint_names)
        self.state = JointStateCache(self.joint_names)
        self.state_timeout_s = state_timeout_s
        self.goal_tolerance_rad = goal_tolerance_rad
        self.path_tolerance_rad = path_tolerance_rad
        self.goal_time_tolerance_s = goal_time_tolerance_s
        self.stopped_velocity_tolerance_rad_s = stopped_velocity_tolerance_rad_s
        self.stop_deceleration = stop_deceleration_rad_s2
        self.gripper_timeout_s = gripper_timeout_s
        self.control_period_s = control_period_s
        #: how the last motion ended (None before the first)
        self.last_settle: SettleReport | None = None
        self._halted = ''
        #: the last trajectory sent: (time sent, times from 0, positions from the start state)
        self._commanded: tuple[float, np.ndarray, np.ndarray] | None = None
        group = MutuallyExclusiveCallbackGroup()
        self.pub = node.create_publisher(
            JointTrajectory,
            trajectory_topic,
            QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE),
        )
        self.sub = node.create_subscription(
            JointState,
            joint_states_topic,
            self.state.update,
            QoSProfile(depth=20),
            callback_group=group,
        )
        self.gripper_client = node.create_client(
            SetBool, gripper_service, callback_group=MutuallyExclusiveCallbackGroup()
        )
        self.gripper_service = gripper_service
        self.trajectory_topic = trajectory_topic
        self._gripper = gripper
        self.speed_scaling = SpeedScaling()
        if speed_scaling_topic:
            node.create_subscription(
                Float64,
                speed_scaling_topic,
                self.speed_scaling.update,
                QoSProfile(depth=10),
                callback_group=MutuallyExclusiveCallbackGroup(),  # never delays joint states
            )

    # --- state ----------------------------------------------------------------------------
    def joint_positions(self) -> np.ndarray:
        """Current joint positions (rad). Raises BackendError when stale."""
        return self.state.get(self.state_timeout_s)[0]

    def joint_state(self) -> tuple[np.ndarray, np.ndarray]:
        """Measured joint positions (rad) and velocities (rad/s), for replanning while moving.

        Raises:
            BackendError: when no joint state arrived or it is stale.
        """
        return self.state.get(self.state_timeout_s)

    # --- motion ---------------------------------------------------------------------------
    def _trajectory(
        self, times: np.ndarray, q: np.ndarray, v: np.ndarray | None, a: np.ndarray | None
    ) -> JointTrajectory:
        msg = JointTrajectory()
        msg.joint_names = list(self.joint_names)
        for i, t in enumerate(times):
            p = JointTrajectoryPoint()
            p.positions = [float(x) for x in q[i]]
            if v is not None:
                p.velocities = [float(x) for x in v[i]]
            if a is not None:
                p.accelerations = [float(x) for x in a[i]]
            p.time_from_start = _duration(float(t))
            msg.points.append(p)
        return msg  # header.stamp zero: start now

    def stop(self) -> None:
        """Decelerate to rest from the current state (a short replacing trajectory).

        Without a fresh joint state (the state is what was lost) it holds where the last
        commanded trajectory says the arm is now: a one-point trajectory to that point on the
        validated path. (An empty trajectory is no stop: Jazzy's joint trajectory controller
        rejects it with "Empty trajectory received." and the arm runs on.) When nothing was
        commanded, nothing of ours is moving and nothing is sent.
        """
        try:
            q, v = self.state.get(self.state_timeout_s)
        except BackendError:
            hold = self._commanded_now()
            if hold is not None:
                self._publish(np.array([0.5]), hold[None], np.zeros((1, len(hold))), None, hold)
            return
        vmax = float(np.max(np.abs(v))) if v.size else 0.0
        t_stop = min(max(vmax / self.stop_deceleration, 0.05), 0.5)
        q_stop = q + 0.5 * v * t_stop
        self._publish(np.array([t_stop]), q_stop[None], np.zeros((1, len(q))), None, q)

    def _publish(
        self,
        times: np.ndarray,
        q: np.ndarray,
        v: np.ndarray | None,
        a: np.ndarray | None,
        q_start: np.ndarray,
    ) -> None:
        """Send a trajectory (times > 0) and remember it as the commanded motion."""
        self.pub.publish(self._trajectory(times, q, v, a))
        self._commanded = (
            time.monotonic(),
            np.concatenate([[0.0], np.asarray(times, dtype=float)]),
            np.vstack([np.asarray(q_start, dtype=float)[None], np.asarray(q, dtype=float)]),
        )

    def _commanded_now(self) -> np.ndarray | None:
        """Where the last commanded trajectory has the arm now (its end once it is over)."""
        if self._commanded is None:
            return None
        sent, times, qs = self._commanded
        t = min(max(time.monotonic() - sent, 0.0), float(times[-1]))
        return np.array([np.interp(t, times, qs[:, j]) for j in range(qs.shape[1])])

    def halt(self, reason: str, ack_timeout_s: float = 1.0) -> bool:
        """Stop the arm for good (executor shutdown): stop now, refuse every later motion.

        The running :meth:`execute` returns STOPPED with ``reason`` at its next check; later
        calls return at once. Call it while the node and its context are still valid.

        Args:
            reason: why, for the goal's result and the log (e.g. ``'executor shutting down'``).
            ack_timeout_s: longest wait for the controller to acknowledge the stop, s.

        Returns:
            True when every subscriber acknowledged the stop within ``ack_timeout_s``.
        """
        self._halted = reason or 'halted'
        self.stop()
        return wait_acked(self.pub, ack_timeout_s)

    def execute(
        self,
        segment: Any,
        interrupt: Callable[[], Interrupt | None],
        progress: Callable[[float], None],
    ) -> MotionResult:
        """Publish the segment's trajectory and follow it on /joint_states.

        Returns:
            DONE once the arm settled at the goal (see :class:`SettleCheck`), STOPPED when
            ``interrupt()`` gave a reason or the backend was halted, FAILED on lost joint
            state, a path deviation or a goal not reached within the bounded settle wait.
        """
        if self._halted:
            return MotionResult(MotionStatus.STOPPED, self._halted, self._halted)
        times = np.asarray(segment.times_s, dtype=float)
        qs = np.asarray(segment.positions_rad, dtype=float)
        try:
            q_now, _ = self.state.get(self.state_timeout_s)
        except BackendError as exc:
            return MotionResult(MotionStatus.FAILED, str(exc))
        start_err = float(np.max(np.abs(q_now - qs[0])))
        if start_err > max(self.goal_tolerance_rad * 3, 0.05):
            return MotionResult(
                MotionStatus.FAILED,
                f'the arm is {start_err:.3f} rad away from the planned start: '
                'it moved since planning',
            )
        if self.pub.get_subscription_count() == 0:
            return MotionResult(
                MotionStatus.FAILED,
                f'no controller subscribes to {self.pub.topic_name}: is the joint trajectory '
                'controller active (ros2 control list_controllers)? Nothing was sent',
            )
        # Skip t = 0 (the current state) so the controller does not see a zero-time point.
        keep = times > 1e-6
        self._publish(
            times[keep],
            qs[keep],
            np.asarray(segment.velocities_rad_s)[keep],
            np.asarray(segment.accelerations_rad_s2)[keep],
            q_now,
        )
        t0 = time.monotonic()
        clock = ScaledClock(self.speed_scaling)
        clock.tick(t0)
        duration = float(times[-1])
        settle = SettleCheck(
            self.joint_names,
            qs[-1],
            self.goal_tolerance_rad,
            self.stopped_velocity_tolerance_rad_s,
            self.goal_time_tolerance_s,
        )
        while True:
            if self._halted:  # halt() already stopped the arm
                return MotionResult(MotionStatus.STOPPED, self._halted, self._halted)
            why = interrupt()
            if isinstance(why, Interrupt) and why.keep_moving:
                # replanning while moving: the runner's next trajectory replaces this one
                return MotionResult(MotionStatus.HANDED_OVER, str(why), str(why))
            if why:
                self.stop()
                self._wait_rest(1.0)
                return MotionResult(MotionStatus.STOPPED, str(why), str(why))
            now = time.monotonic()
            wall = now - t0
            elapsed = clock.tick(now)  # trajectory time, as the scaled controller counts it
            try:
                q, v = self.state.get(self.state_timeout_s)
            except BackendError as exc:
                self.stop()
                return MotionResult(MotionStatus.FAILED, f'lost joint state during motion: {exc}')
            desired = np.array(
                [np.interp(min(elapsed, duration), times, qs[:, j]) for j in range(qs.shape[1])]
            )
            dev = np.abs(q - desired)
            if float(dev.max()) > self.path_tolerance_rad and wall > 0.2:
                j = int(dev.argmax())
                self.stop()
                return MotionResult(
                    MotionStatus.FAILED,
                    f'{self.joint_names[j]} deviated {dev[j]:.3f} rad from the '
                    f'trajectory at t={elapsed:.2f} s (tolerance '
                    f'{self.path_tolerance_rad} rad; speed scaling '
                    f'{100 * self.speed_scaling():.0f} %)',
                )
            progress(min(elapsed / max(duration, 1e-6), 1.0))
            if elapsed >= duration:
                report = settle.update(elapsed - duration, q, v)  # scaled end
                if report is not None:
                    self.last_settle = report
                    if report.settled:
                        scaled = (
                            f' (took {wall:.2f} s: speed scaling down to '
                            f'{100 * clock.lowest:.0f} %)'
                            if clock.lowest < 0.999
                            else ''
                        )
                        self.node.get_logger().info(
                            f'{len(times)}-point trajectory over {duration:.2f} s{scaled}: '
                            f'{report.describe()}'
                        )
                        return MotionResult(MotionStatus.DONE, report.describe())
                    self.stop()
                    return MotionResult(MotionStatus.FAILED, report.describe())
            time.sleep(self.control_period_s)

    def _wait_rest(self, timeout_s: float) -> None:
        wait_until_rest(self.state, self.state_timeout_s, timeout_s, self.control_period_s)

    # --- gripper --------------------------------------------------------------------------
    def gripper(self, close: bool, segment: Any = None) -> tuple[bool, str]:
        """The gripper adapter, or the SetBool service. Returns (success, its message)."""
        if self._gripper is not None:
            return self._gripper(bool(close))
        return call_gripper(
            self.gripper_client,
            self.gripper_service,
            SetBool.Request(data=close),
            self.gripper_timeout_s,
        )
