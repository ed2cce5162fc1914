"""A move_group stand-in that behaves as moveit2 Jazzy's does, for tests where MoveIt cannot run.

Design notes: docs/design-notes.md (trace_executor.testing.move_group).
"""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass, field
import threading
from types import SimpleNamespace
from typing import Any

from builtin_interfaces.msg import Duration
import numpy as np
import pinocchio as pin
from rclpy.qos import QoSProfile
from sensor_msgs.msg import JointState
from std_msgs.msg import Header, String
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from robotracer_ros.stamps import seconds
from trace_executor.backends.moveit import MoveItTypes
from trace_executor.testing.ur_driver import UrDriverStandIn
from trace_executor.ur5.ik import PinkIk

__all__ = ['STAND_IN_TYPES', 'MoveGroupStandIn']


class MoveItErrorCodes:
    """moveit_msgs/MoveItErrorCodes: the constants the backend reads, and ``val``."""

    SUCCESS = 1
    FAILURE = 99999
    PLANNING_FAILED = -1
    INVALID_MOTION_PLAN = -2
    CONTROL_FAILED = -4
    TIMED_OUT = -6
    PREEMPTED = -7
    NO_IK_SOLUTION = -31

    def __init__(self, val: int = 0) -> None:
        self.val = int(val)


@dataclass
class RobotState:
    """moveit_msgs/RobotState (the fields the backend sets)."""

    joint_state: JointState = field(default_factory=JointState)
    is_diff: bool = False


@dataclass
class RobotTrajectory:
    """moveit_msgs/RobotTrajectory (joint part)."""

    joint_trajectory: JointTrajectory = field(default_factory=JointTrajectory)


@dataclass
class _CartesianRequest:
    header: Header = field(default_factory=Header)
    start_state: RobotState = field(default_factory=RobotState)
    group_name: str = ''
    link_name: str = ''
    waypoints: list = field(default_factory=list)
    max_step: float = 0.0
    jump_threshold: float = 0.0
    revolute_jump_threshold: float = 0.0
    prismatic_jump_threshold: float = 0.0
    avoid_collisions: bool = True
    max_velocity_scaling_factor: float = 0.0
    max_acceleration_scaling_factor: float = 0.0

    def get_fields_and_field_types(self) -> dict[str, str]:
        """As rosidl messages answer (names → type strings)."""
        return {k: type(v).__name__ for k, v in self.__dict__.items()}


@dataclass
class _CartesianResponse:
    start_state: RobotState = field(default_factory=RobotState)
    solution: RobotTrajectory = field(default_factory=RobotTrajectory)
    fraction: float = 0.0
    error_code: MoveItErrorCodes = field(default_factory=MoveItErrorCodes)


@dataclass
class _ExecuteGoal:
    trajectory: RobotTrajectory = field(default_factory=RobotTrajectory)
    controller_names: list = field(default_factory=list)


GetCartesianPath = SimpleNamespace(Request=_CartesianRequest, Response=_CartesianResponse)
ExecuteTrajectory = SimpleNamespace(Goal=_ExecuteGoal)

#: the moveit_msgs types of the stand-in (same field names and types as moveit_msgs)
STAND_IN_TYPES = MoveItTypes(ExecuteTrajectory, GetCartesianPath, RobotState, MoveItErrorCodes)


def _done(value: Any) -> Future:
    f: Future = Future()
    f.set_result(value)
    return f


class _GoalHandle:
    """An accepted ExecuteTrajectory goal (the rclpy ClientGoalHandle interface)."""

    accepted = True

    def __init__(self) -> None:
        self.result_future: Future = Future()
        self.cancel_requests = 0

    def get_result_async(self) -> Future:
        return self.result_future

    def cancel_goal_async(self) -> Future:
        # Jazzy: CancelResponse::ACCEPT and nothing else: the execution goes on
        self.cancel_requests += 1
        return _done(SimpleNamespace(return_code=0))


class MoveGroupStandIn:
    """move_group as Jazzy behaves (module docstring).

    Args:
        node: node for the ``trajectory_execution_event`` subscription (spun elsewhere).
        driver: the arm (its controller executes the trajectories).
        planner: the UR5 planner (kinematics, joint limits, TCP offset) for the IK.
        honour_stop: react to ``stop`` on ``trajectory_execution_event``.
        flip_window: (from, to) fractions of the returned path on the flipped wrist branch.
        event_topic: the execution manager's event topic.
    """

    def __init__(
        self,
        node: Any,
        driver: UrDriverStandIn,
        planner: Any,
        *,
        honour_stop: bool = True,
        flip_window: tuple[float, float] | None = None,
        event_topic: str = 'trajectory_execution_event',
    ) -> None:
        self.types = STAND_IN_TYPES
        self.driver = driver
        self.planner = planner
        self.honour_stop = honour_stop
        self.flip_window = flip_window
        self.events: list[str] = []
        self.requests: list[Any] = []
        self.goals: list[_GoalHandle] = []
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._ik = PinkIk(planner.kinematics, planner.lower_rad, planner.upper_rad)
        self._flip_ik = PinkIk(
            planner.kinematics, planner.lower_rad, planner.upper_rad, max_iterations=200
        )
        node.create_subscription(String, event_topic, self._on_event, QoSProfile(depth=10))

    # --- the execution manager's events ---------------------------------------------------
    def _on_event(self, msg: String) -> None:
        self.events.append(msg.data)
        if msg.data == 'stop' and self.honour_stop:
            self._stopped.set()
            self.driver.hold()  # the controller's goal is cancelled: it holds

    # --- /compute_cartesian_path ----------------------------------------------------------
    def wait_for_planner(self, timeout_s: float) -> bool:
        """The service is always there."""
        return True

    def compute_cartesian_path(self, req: Any) -> Future:
        """Answer a GetCartesianPath request as Jazzy does (module docstring)."""
        self.requests.append(req)
        names = list(req.start_state.joint_state.name)
        q = np.asarray(req.start_state.joint_state.position, dtype=float)
        offset = float(self.planner.config.tcp_offset_m)
        tip_T_tcp = np.eye(4)
        tip_T_tcp[2, 3] = offset
        pose = self.planner.forward_tcp(q) @ np.linalg.inv(tip_T_tcp)
        targets = [pose]
        for w in req.waypoints:
            t = np.eye(4)
            t[:3, 3] = (w.position.x, w.position.y, w.position.z)
            quat = pin.Quaternion(
                w.orientation.w, w.orientation.x, w.orientation.y, w.orientation.z
            )
            t[:3, :3] = quat.normalized().toRotationMatrix()
            targets.append(t)
        samples: list[np.ndarray] = [q]
        tcps: list[np.ndarray] = []
        reached = 0
        for a, b in zip(targets[:-1], targets[1:], strict=True):
            n = max(1, int(np.ceil(np.linalg.norm(b[:3, 3] - a[:3, 3]) / max(req.max_step, 1e-4))))
            w = pin.log3(a[:3, :3].T @ b[:3, :3])
            ok = True
            for k in range(1, n + 1):
                f = k / n
                tip = np.eye(4)
                tip[:3, 3] = a[:3, 3] + f * (b[:3, 3] - a[:3, 3])
                tip[:3, :3] = a[:3, :3] @ pin.exp3(f * w)
                tcp = tip @ tip_T_tcp
                res = self._ik.solve(tcp[:3, 3], tcp[:3, :3], samples[-1])
                if not res.converged:
                    ok = False
                    break
                samples.append(res.q)
                tcps.append(tcp)
            if not ok:
                break
            reached += 1
        fraction = reached / max(len(req.waypoints), 1)
        path = np.array(samples[1:]) if len(samples) > 1 else np.zeros((0, len(q)))
        if self.flip_window is not None and len(path):
            # the same tool poses on another IK branch (elbow and wrist flipped), as an IK
            # seeded from a bad state returns them
            lo, hi = (int(f * len(path)) for f in self.flip_window)
            seed = None
            for k in range(lo, hi):
                if seed is None:
                    seed = path[k] * np.array([1, 1, 1, 1, -1, 1]) + np.array(
                        [0, 0, 0, np.pi, 0, np.pi]
                    )
                res = self._flip_ik.solve(tcps[k][:3, 3], tcps[k][:3, :3], seed)
                if res.converged:
                    path[k] = res.q
                    seed = res.q
        traj = JointTrajectory(joint_names=names)
        dt = 0.05  # MoveIt times it (TOTG); the backend stretches it to the plan
        for k, qk in enumerate(path):
            t = (k + 1) * dt
            traj.points.append(
                JointTrajectoryPoint(
                    positions=[float(x) for x in qk],
                    time_from_start=Duration(sec=int(t), nanosec=int(round((t % 1) * 1e9))),
                )
            )
        res = _CartesianResponse(fraction=fraction)
        res.start_state = req.start_state
        res.solution.joint_trajectory = traj
        res.error_code.val = MoveItErrorCodes.SUCCESS
        return _done(res)

    # --- /execute_trajectory --------------------------------------------------------------
    def wait_for_executor(self, timeout_s: float) -> bool:
        """The action server is always there."""
        return True

    def send_goal(self, goal: Any) -> Future:
        """Accept and execute an ExecuteTrajectory goal on the driver."""
        handle = _GoalHandle()
        self.goals.append(handle)
        self._stopped.clear()
        self.driver.command(goal.trajectory.joint_trajectory)
        threading.Thread(target=self._monitor, args=(handle,), daemon=True).start()
        return _done(handle)

    def _monitor(self, handle: _GoalHandle) -> None:
        while self.driver.moving and not self._stopped.is_set():
            self._stopped.wait(0.01)
        code = MoveItErrorCodes.PREEMPTED if self._stopped.is_set() else MoveItErrorCodes.SUCCESS
        handle.result_future.set_result(
            SimpleNamespace(result=SimpleNamespace(error_code=MoveItErrorCodes(code)))
        )

    @staticmethod
    def duration(traj: JointTrajectory) -> float:
        """A trajectory's duration, s."""
        return seconds(traj.points[-1].time_from_start) if traj.points else 0.0
