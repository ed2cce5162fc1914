"""``moveit_py`` backend: MoveIt in-process through moveit_py (MoveIt 2 Jazzy's Python API).

Design notes: docs/design-notes.md (trace_executor.backends.moveit_py).
"""

from __future__ import annotations

from collections.abc import Callable
import threading
import time
from typing import Any

import numpy as np

from trace_executor.execution import BackendError, Halting, Interrupt, MotionResult, MotionStatus

MOVEIT_PY_MISSING = (
    'moveit_py backend needs moveit_py (MoveIt 2 Python bindings, ros-jazzy-moveit-py; use the '
    'docker image)'
)


def segment_points(
    segment: Any,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The segment's samples after t = 0, as a joint trajectory needs them.

    Returns:
        (times (K,), positions (K, J), velocities (K, J), accelerations (K, J)); the t = 0 sample
        (the current state) is left out.
    """
    times = np.asarray(segment.times_s, dtype=float)
    keep = times > 1e-6
    return (
        times[keep],
        np.asarray(segment.positions_rad, dtype=float)[keep],
        np.asarray(segment.velocities_rad_s, dtype=float)[keep],
        np.asarray(segment.accelerations_rad_s2, dtype=float)[keep],
    )


class MoveItPyBackend(Halting):
    """Check with MoveIt's planning scene, execute with MoveIt's execution manager (docstring).

    Args:
        node: the executor node (joint states; spun by a MultiThreadedExecutor elsewhere).
        joint_names: the arm's joints, planner order.
        group_name: MoveIt planning group (``ur_manipulator``).
        joint_states_topic: sensor_msgs/JointState topic.
        gripper: a gripper adapter (``trace_executor.backends.grippers``) or None.
        state_timeout_s: joint states older than this are stale, s.
        start_tolerance_rad: the arm may be this far from a segment's planned start, rad.
        goal_tolerance_rad: joint error accepted at the end, rad.
        stop_timeout_s: time allowed for a stop to show in the joint states, s.
        rest_speed_rad_s: the arm is at rest below this joint speed, rad/s.
        control_period_s: how often ``interrupt()`` is checked, s.

    Raises:
        BackendError: moveit_py is not importable, or MoveItPy could not start.
    """

    name = 'moveit_py'

    def __init__(
        self,
        node: Any,
        joint_names: tuple[str, ...],
        *,
        group_name: str = 'ur_manipulator',
        joint_states_topic: str = 'joint_states',
        gripper: Any = None,
        state_timeout_s: float = 0.5,
        start_tolerance_rad: float = 0.05,
        goal_tolerance_rad: float = 0.02,
        stop_timeout_s: float = 2.0,
        rest_speed_rad_s: float = 0.01,
        control_period_s: float = 0.01,
    ) -> None:
        try:
            from moveit.core.robot_state import RobotState
            from moveit.core.robot_trajectory import RobotTrajectory
            from moveit.planning import MoveItPy
            from moveit_msgs.msg import RobotTrajectory as RobotTrajectoryMsg
        except ImportError as exc:
            raise BackendError(f'{MOVEIT_PY_MISSING}: {exc}') from exc
        from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
        from rclpy.qos import QoSProfile
        from sensor_msgs.msg import JointState
        from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

        from trace_executor.backends.ros2_control import JointStateCache, _duration

        self._RobotState = RobotState
        self._RobotTrajectory = RobotTrajectory
        self._RobotTrajectoryMsg = RobotTrajectoryMsg
        self._JointTrajectory = JointTrajectory
        self._JointTrajectoryPoint = JointTrajectoryPoint
        self._duration = _duration
        try:  # its own rclcpp node; parameters (robot description, MoveIt config) from launch
            self.moveit = MoveItPy(node_name=f'{node.get_name()}_moveit_py')
        except Exception as exc:  # noqa: BLE001 - MoveItPy raises RuntimeError and others
            raise BackendError(f'MoveItPy could not start: {exc}') from exc
        self.node = node
        self.joint_names = tuple(joint_names)
        self.group_name = group_name
        self.robot_model = self.moveit.get_robot_model()
        self.scene_monitor = self.moveit.get_planning_scene_monitor()
        self.execution = self.moveit.get_trajectory_execution_manager()
        self._gripper = gripper
        self.state_timeout_s = float(state_timeout_s)
        self.start_tolerance_rad = float(start_tolerance_rad)
        self.goal_tolerance_rad = float(goal_tolerance_rad)
        self.stop_timeout_s = float(stop_timeout_s)
        self.rest_speed_rad_s = float(rest_speed_rad_s)
        self.control_period_s = float(control_period_s)
        self.state = JointStateCache(self.joint_names)
        node.create_subscription(
            JointState,
            joint_states_topic,
            self.state.update,
            QoSProfile(depth=20),
            callback_group=MutuallyExclusiveCallbackGroup(),
        )

    # --- state ----------------------------------------------------------------------------
    def joint_positions(self) -> np.ndarray:
        """Current joint positions (rad). Raises BackendError when stale."""
        return self.state.get(self.state_timeout_s)[0]

    # --- planning: MoveIt checks the planner's path ---------------------------------------
    def _moveit_trajectory(self, segment: Any, q_now: np.ndarray) -> Any:
        times, q, v, a = segment_points(segment)
        msg = self._RobotTrajectoryMsg()
        jt = self._JointTrajectory(joint_names=list(self.joint_names))
        for k, t in enumerate(times):
            jt.points.append(
                self._JointTrajectoryPoint(
                    positions=[float(x) for x in q[k]],
                    velocities=[float(x) for x in v[k]],
                    accelerations=[float(x) for x in a[k]],
                    time_from_start=self._duration(float(t)),
                )
            )
        msg.joint_trajectory = jt
        start = self._RobotState(self.robot_model)
        start.set_joint_group_positions(self.group_name, q_now)
        start.update()
        traj = self._RobotTrajectory(self.robot_model)
        traj.set_robot_trajectory_msg(start, msg)
        return traj, msg

    def check_path(self, segment: Any, q_now: np.ndarray) -> tuple[Any, str]:
        """(RobotTrajectory msg, '') when MoveIt accepts the path, else (None, why not)."""
        from trace_executor.backends.moveit import joint_jumps

        _, q, _, _ = segment_points(segment)
        jump = joint_jumps(np.vstack([q_now[None], q]), self.joint_names, 0.3)
        if jump:
            return None, jump
        traj, msg = self._moveit_trajectory(segment, q_now)
        with self.scene_monitor.read_only() as scene:
            valid = scene.is_path_valid(traj, self.group_name, False)
        if not valid:
            return None, (
                "MoveIt's planning scene refuses the path (a collision object, the octomap, a "
                'joint limit or a self-collision on it): not executed'
            )
        return msg, ''

    # --- execution ------------------------------------------------------------------------
    def execute(
        self,
        segment: Any,
        interrupt: Callable[[], Interrupt | None],
        progress: Callable[[float], None],
    ) -> MotionResult:
        """Check the path in MoveIt's scene, execute it through MoveIt, stop on interrupt."""
        if (halted := self.halted()) is not None:
            return halted
        try:
            q_now, _ = self.state.get(self.state_timeout_s)
        except BackendError as exc:
            return MotionResult(MotionStatus.FAILED, str(exc))
        qs = np.asarray(segment.positions_rad, dtype=float)
        err = np.abs(q_now - qs[0])
        if float(err.max()) > self.start_tolerance_rad:
            j = int(err.argmax())
            return MotionResult(
                MotionStatus.FAILED,
                f'the arm is {err[j]:.3f} rad ({self.joint_names[j]}) away from the planned '
                'start: it moved since planning',
            )
        msg, why = self.check_path(segment, q_now)
        if msg is None:
            return MotionResult(MotionStatus.FAILED, f'not executed: {why}')
        done = threading.Event()
        status: list[Any] = []

        def finished(s: Any) -> None:
            status.append(s)
            done.set()

        if not self.execution.push(msg, ''):
            return MotionResult(MotionStatus.FAILED, 'MoveIt refused the trajectory (push)')
        self.execution.execute(finished, True)
        duration = max(float(np.asarray(segment.times_s)[-1]), 1e-6)
        t0 = time.monotonic()
        while not done.is_set():
            why_stop = interrupt()
            if why_stop:
                self.stop()
                rest = self._at_rest()
                if rest:
                    return MotionResult(MotionStatus.FAILED, f'{why_stop}: {rest}', str(why_stop))
                return MotionResult(MotionStatus.STOPPED, str(why_stop), str(why_stop))
            progress(min((time.monotonic() - t0) / duration, 1.0))
            time.sleep(self.control_period_s)
        text = str(getattr(status[0], 'status', status[0])) if status else 'unknown'
        if 'SUCCEEDED' not in text.upper():
            return MotionResult(MotionStatus.FAILED, f'MoveIt execution ended {text}')
        q, _ = self.state.get(self.state_timeout_s)
        err = np.abs(q - qs[-1])
        if float(err.max()) > self.goal_tolerance_rad:
            j = int(err.argmax())
            return MotionResult(
                MotionStatus.FAILED,
                f'{self.joint_names[j]} ended {err[j]:.3f} rad from the goal',
            )
        progress(1.0)
        return MotionResult(MotionStatus.DONE)

    def _at_rest(self) -> str:
        """'' once the joint states show the arm at rest, else which joint still moves."""
        deadline = time.monotonic() + self.stop_timeout_s
        why = 'no fresh joint state'
        while time.monotonic() < deadline:
            try:
                q0, _ = self.state.get(self.state_timeout_s)
                time.sleep(0.15)
                q1, _ = self.state.get(self.state_timeout_s)
            except BackendError as exc:
                why = str(exc)
                continue
            speed = np.abs(q1 - q0) / 0.15
            j = int(speed.argmax())
            if float(speed[j]) <= self.rest_speed_rad_s:
                return ''
            why = f'{self.joint_names[j]} still moving at {speed[j]:.3f} rad/s'
        return f'the arm did not stop: {why}'

    def stop(self) -> None:
        """Stop MoveIt's execution now."""
        self.execution.stop_execution(True)

    def gripper(self, close: bool, segment: Any = None) -> tuple[bool, str]:
        """The gripper adapter."""
        if self._gripper is None:
            return False, 'no gripper configured for the moveit_py backend'
        return self._gripper(bool(close))
