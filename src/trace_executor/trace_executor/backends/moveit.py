"""``moveit`` backend: Cartesian paths planned and executed by MoveIt (needs a MoveIt install).

Design notes: docs/design-notes.md (trace_executor.backends.moveit).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
import time
from typing import Any, Protocol

import numpy as np
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.qos import QoSProfile

from robotracer_ros.stamps import seconds
from trace_executor.backends.cartesian import select_waypoints, tool_poses
from trace_executor.backends.ros2_control import (
    JointStateCache,
    call_gripper,
    wait_future,
)
from trace_executor.execution import BackendError, Interrupt, MotionResult, MotionStatus
from trace_executor.trace_check import fmt_point

MOVEIT_MISSING = 'moveit backend needs moveit_msgs / a MoveIt install (use the docker image)'


def _duration(msg_type: Any, t: float) -> Any:
    sec = int(t)
    return msg_type(sec=sec, nanosec=int(round((t - sec) * 1e9)))


def _matrix_to_pose(pose_type: Any, t: np.ndarray) -> Any:
    import pinocchio as pin

    q = pin.Quaternion(np.asarray(t[:3, :3], dtype=float))
    msg = pose_type()
    msg.position.x, msg.position.y, msg.position.z = (float(v) for v in t[:3, 3])
    msg.orientation.x, msg.orientation.y = float(q.x), float(q.y)
    msg.orientation.z, msg.orientation.w = float(q.z), float(q.w)
    return msg


def stretch_timing(times_s: np.ndarray, min_duration_s: float) -> tuple[np.ndarray, float]:
    """Slow a timed trajectory down uniformly so it lasts at least ``min_duration_s``.

    Args:
        times_s: (K,) sample times (s), increasing, the last > 0.
        min_duration_s: the shortest acceptable duration (s).

    Returns:
        ``(times, factor)``: the new times and the stretch factor (≥ 1): velocities are to be
        divided by it and accelerations by its square.
    """
    t = np.asarray(times_s, dtype=float)
    if len(t) == 0 or t[-1] <= 0:
        return t, 1.0
    factor = max(1.0, float(min_duration_s) / float(t[-1]))
    return t * factor, factor


def point_along(positions_m: np.ndarray, fraction: float) -> np.ndarray:
    """The point at ``fraction`` (0-1) of a polyline's length.

    Args:
        positions_m: (K, 3) polyline vertices, K ≥ 1.
        fraction: how far along, 0-1.

    Returns:
        (3,) the point.
    """
    p = np.asarray(positions_m, dtype=float)
    if len(p) == 1:
        return p[0].copy()
    legs = np.linalg.norm(np.diff(p, axis=0), axis=1)
    arc = np.concatenate([[0.0], np.cumsum(legs)])
    s = float(np.clip(fraction, 0.0, 1.0)) * arc[-1]
    i = int(np.clip(np.searchsorted(arc, s, side='right') - 1, 0, len(legs) - 1))
    f = 0.0 if legs[i] <= 0 else (s - arc[i]) / legs[i]
    return p[i] + f * (p[i + 1] - p[i])


def joint_jumps(
    positions_rad: np.ndarray, joint_names: tuple[str, ...], max_jump_rad: float
) -> str:
    """Check the joint continuity of a path MoveIt returned (Jazzy ignores its jump thresholds).

    Args:
        positions_rad: (K, J) path points, in ``joint_names`` order.
        joint_names: names for the message.
        max_jump_rad: largest change of any joint between consecutive points, rad.

    Returns:
        '' when continuous, else a sentence naming the joint, the jump and where it happens.
    """
    q = np.asarray(positions_rad, dtype=float)
    if len(q) < 2:
        return ''
    steps = np.abs(np.diff(q, axis=0))
    k, j = np.unravel_index(int(steps.argmax()), steps.shape)
    if float(steps[k, j]) <= max_jump_rad:
        return ''
    return (
        f"MoveIt's Cartesian path jumps {steps[k, j]:.2f} rad on {joint_names[j]} between "
        f'points {k} and {k + 1} of {len(q)} (a joint flip; limit {max_jump_rad:g} rad between '
        'points): refused before moving'
    )


@dataclass(frozen=True)
class MoveItTypes:
    """The moveit_msgs types the backend uses (the real ones, or a stand-in's)."""

    ExecuteTrajectory: Any
    GetCartesianPath: Any
    RobotState: Any
    MoveItErrorCodes: Any


class MoveGroupLink(Protocol):
    """What the backend needs from move_group (:class:`MoveGroupClient` or a stand-in)."""

    types: MoveItTypes

    def wait_for_planner(self, timeout_s: float) -> bool:
        """True once the Cartesian path service is there."""

    def compute_cartesian_path(self, request: Any) -> Any:
        """Send a GetCartesianPath request; a future of the response."""

    def wait_for_executor(self, timeout_s: float) -> bool:
        """True once the ExecuteTrajectory action server is there."""

    def send_goal(self, goal: Any) -> Any:
        """Send an ExecuteTrajectory goal; a future of its goal handle."""


class MoveGroupClient:
    """move_group's ``compute_cartesian_path`` service and ``execute_trajectory`` action.

    Args:
        node: the node to create the clients on.
        cartesian_path_service: GetCartesianPath service name.
        execute_action: ExecuteTrajectory action name.

    Raises:
        BackendError: moveit_msgs is not installed (no MoveIt here).
    """

    def __init__(self, node: Any, cartesian_path_service: str, execute_action: str) -> None:
        try:
            from moveit_msgs.action import ExecuteTrajectory
            from moveit_msgs.msg import MoveItErrorCodes, RobotState
            from moveit_msgs.srv import GetCartesianPath
        except ImportError as exc:
            raise BackendError(f'{MOVEIT_MISSING}: {exc}') from exc
        from robotracer_commander.action_client import RaceFreeActionClient

        self.types = MoveItTypes(ExecuteTrajectory, GetCartesianPath, RobotState, MoveItErrorCodes)
        group = ReentrantCallbackGroup()
        self.cartesian_client = node.create_client(
            GetCartesianPath, cartesian_path_service, callback_group=group
        )
        self.execute_client = RaceFreeActionClient(
            node, ExecuteTrajectory, execute_action, callback_group=group
        )

    def wait_for_planner(self, timeout_s: float) -> bool:
        """True once the service is there."""
        return bool(self.cartesian_client.wait_for_service(timeout_sec=timeout_s))

    def compute_cartesian_path(self, request: Any) -> Any:
        """A future of the GetCartesianPath response."""
        return self.cartesian_client.call_async(request)

    def wait_for_executor(self, timeout_s: float) -> bool:
        """True once the action server is there."""
        return bool(self.execute_client.wait_for_server(timeout_sec=timeout_s))

    def send_goal(self, goal: Any) -> Any:
        """A future of the ExecuteTrajectory goal handle."""
        return self.execute_client.send_goal_async(goal)


class MoveItBackend:
    """Plan Cartesian paths with MoveIt and execute them through MoveIt (module docstring)."""

    name = 'moveit'

    def __init__(
        self,
        node: Any,
        joint_names: tuple[str, ...],
        planner: Any,
        *,
        group_name: str = 'ur_manipulator',
        tip_link: str = 'tool0',
        planning_frame: str = 'base_link',
        cartesian_path_service: str = 'compute_cartesian_path',
        execute_action: str = 'execute_trajectory',
        execution_event_topic: str = 'trajectory_execution_event',
        controller_topic: str = 'scaled_joint_trajectory_controller/joint_trajectory',
        joint_states_topic: str = 'joint_states',
        gripper_service: str = 'robotracer/gripper',
        gripper: Any = None,
        move_group: MoveGroupLink | None = None,
        max_step_m: float = 0.005,
        jump_threshold: float = 0.0,
        revolute_jump_threshold_rad: float = 0.3,
        waypoint_tolerance_m: float = 0.002,
        waypoint_tolerance_rad: float = 0.02,
        state_timeout_s: float = 0.5,
        start_tolerance_rad: float = 0.05,
        end_tolerance_rad: float = 0.1,
        goal_tolerance_rad: float = 0.02,
        settle_timeout_s: float = 3.0,
        service_timeout_s: float = 10.0,
        stop_timeout_s: float = 2.0,
        rest_speed_rad_s: float = 0.01,
        control_period_s: float = 0.01,
        gripper_timeout_s: float = 5.0,
    ) -> None:
        """Check that MoveIt's interfaces exist here and create the clients.

        Args:
            node: the executor node (spun by a MultiThreadedExecutor elsewhere).
            joint_names: the arm's joint names, planner order.
            planner: the :class:`~trace_executor.ur5.Ur5Planner` (forward kinematics, TCP).
            group_name: MoveIt planning group of the arm (``ur_manipulator`` in
                ur_moveit_config).
            tip_link: the link MoveIt's Cartesian path moves (the planner's tool0).
            planning_frame: frame of the waypoints (the planner's base frame).
            cartesian_path_service: GetCartesianPath service name (relative: under the
                bringup's namespace).
            execute_action: ExecuteTrajectory action name.
            execution_event_topic: the TrajectoryExecutionManager's event topic ("stop").
            controller_topic: the trajectory controller's JointTrajectory topic: the second
                way to stop the arm when move_group's stop did not take effect.
            joint_states_topic: sensor_msgs/JointState topic.
            gripper_service: std_srvs/SetBool gripper service (true = close), used when no
                ``gripper`` adapter is given.
            gripper: a gripper adapter (``trace_executor.backends.grippers``) or None.
            move_group: the move_group link; None = :class:`MoveGroupClient` on ``node``.
            max_step_m: MoveIt's Cartesian interpolation step (m).
            jump_threshold: MoveIt's relative jump threshold (0 = off; Jazzy ignores it).
            revolute_jump_threshold_rad: largest joint change between consecutive points of
                the returned path (rad); sent where the service has the field and always
                checked here (:func:`joint_jumps`).
            waypoint_tolerance_m: how far the straight legs may stray from the planned path.
            waypoint_tolerance_rad: orientation deviation allowed along a leg.
            state_timeout_s: joint states older than this are stale.
            start_tolerance_rad: the arm may be this far from a segment's planned start.
            end_tolerance_rad: MoveIt's path may end this far from the planned end (else it
                reached the pose in another arm configuration: rejected).
            goal_tolerance_rad: joint error accepted when the execution ends.
            settle_timeout_s: time allowed after the execution to settle on the goal.
            service_timeout_s: longest wait for the service, the action server and its answer.
            stop_timeout_s: time allowed for each way of stopping to show in the joint states.
            rest_speed_rad_s: the arm is at rest when no joint moves faster than this.
            control_period_s: how often ``interrupt()`` and the joint state are checked.
            gripper_timeout_s: longest wait for the gripper service.

        Raises:
            BackendError: moveit_msgs is not installed (no MoveIt here).
        """
        link = (
            MoveGroupClient(node, cartesian_path_service, execute_action)
            if move_group is None
            else move_group
        )
        from builtin_interfaces.msg import Duration
        from geometry_msgs.msg import Pose
        from sensor_msgs.msg import JointState
        from std_msgs.msg import String
        from std_srvs.srv import SetBool
        from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

        types = link.types
        MoveItErrorCodes = types.MoveItErrorCodes  # noqa: N806 (a message type)
        self.move_group = link
        self._ExecuteTrajectory = types.ExecuteTrajectory
        self._GetCartesianPath = types.GetCartesianPath
        self._RobotState = types.RobotState
        self._Pose = Pose
        self._Duration = Duration
        self._SetBool = SetBool
        self._String = String
        self._JointTrajectory = JointTrajectory
        self._JointTrajectoryPoint = JointTrajectoryPoint
        self._error_names = {
            int(getattr(MoveItErrorCodes, n)): n
            for n in dir(MoveItErrorCodes)
            if n.isupper() and isinstance(getattr(MoveItErrorCodes, n), int)
        }
        self._success = int(MoveItErrorCodes.SUCCESS)
        self.node = node
        self.joint_names = tuple(joint_names)
        self.planner = planner
        self.group_name = group_name
        self.tip_link = tip_link
        self.planning_frame = planning_frame
        self.max_step_m = float(max_step_m)
        self.jump_threshold = float(jump_threshold)
        self.revolute_jump_threshold_rad = float(revolute_jump_threshold_rad)
        self.waypoint_tolerance_m = float(waypoint_tolerance_m)
        self.waypoint_tolerance_rad = float(waypoint_tolerance_rad)
        self.state_timeout_s = float(state_timeout_s)
        self.start_tolerance_rad = float(start_tolerance_rad)
        self.end_tolerance_rad = float(end_tolerance_rad)
        self.goal_tolerance_rad = float(goal_tolerance_rad)
        self.settle_timeout_s = float(settle_timeout_s)
        self.service_timeout_s = float(service_timeout_s)
        self.stop_timeout_s = float(stop_timeout_s)
        self.rest_speed_rad_s = float(rest_speed_rad_s)
        self.control_period_s = float(control_period_s)
        self.gripper_timeout_s = float(gripper_timeout_s)
        self.cartesian_path_service = cartesian_path_service
        self.execute_action = execute_action
        self.gripper_service = gripper_service
        self.controller_topic = controller_topic
        self._gripper = gripper
        #: how the last stop went (for the log and the tests)
        self.last_stop = ''
        self._halted = ''
        # tool0 = TCP moved back along its z by the planner's TCP offset
        self._tcp_T_tip = np.eye(4)
        self._tcp_T_tip[2, 3] = -float(planner.config.tcp_offset_m)
        self.state = JointStateCache(self.joint_names)
        node.create_subscription(
            JointState,
            joint_states_topic,
            self.state.update,
            QoSProfile(depth=20),
            callback_group=MutuallyExclusiveCallbackGroup(),
        )
        self.gripper_client = node.create_client(
            SetBool, gripper_service, callback_group=MutuallyExclusiveCallbackGroup()
        )
        # MoveIt's TrajectoryExecutionManager stops whatever it executes on "stop" here
        # (it subscribes with the services QoS: reliable, volatile)
        self.execution_event_pub = node.create_publisher(
            String, execution_event_topic, QoSProfile(depth=10)
        )
        # the controller itself: the second way to stop the arm
        self.controller_pub = node.create_publisher(
            JointTrajectory, controller_topic, QoSProfile(depth=10)
        )

    # --- state ----------------------------------------------------------------------------
    def joint_positions(self) -> np.ndarray:
        """Current joint positions (rad). Raises BackendError when stale."""
        return self.state.get(self.state_timeout_s)[0]

    # --- planning -------------------------------------------------------------------------
    def tip_waypoints(self, segment: Any) -> np.ndarray:
        """Tip-link poses (planning frame) MoveIt must pass through for a segment.

        Returns:
            (W, 4, 4) poses after the start: the thinned tool path of the segment.
        """
        tcp = tool_poses(segment.positions_rad, self.planner.forward_tcp)
        keep = select_waypoints(tcp, self.waypoint_tolerance_m, self.waypoint_tolerance_rad)
        return np.array([tcp[k] @ self._tcp_T_tip for k in keep[1:]]).reshape(-1, 4, 4)

    def cartesian_request(self, q_now: np.ndarray, waypoints: np.ndarray) -> Any:
        """The GetCartesianPath request for tip-link waypoints from the measured state."""
        req = self._GetCartesianPath.Request()
        req.header.frame_id = self.planning_frame
        req.header.stamp = self.node.get_clock().now().to_msg()
        start = self._RobotState()
        start.joint_state.name = list(self.joint_names)
        start.joint_state.position = [float(v) for v in q_now]
        start.is_diff = True
        req.start_state = start
        req.group_name = self.group_name
        req.link_name = self.tip_link
        req.waypoints = [_matrix_to_pose(self._Pose, w) for w in waypoints]
        req.max_step = self.max_step_m
        fields = req.get_fields_and_field_types()
        if 'jump_threshold' in fields:  # relative threshold; absent from newer MoveIt
            req.jump_threshold = self.jump_threshold
        if 'revolute_jump_threshold' in fields:
            req.revolute_jump_threshold = self.revolute_jump_threshold_rad
        if 'max_velocity_scaling_factor' in fields:
            req.max_velocity_scaling_factor = 1.0
            req.max_acceleration_scaling_factor = 1.0
        req.avoid_collisions = True
        return req

    def _plan_segment(self, segment: Any, q_now: np.ndarray) -> tuple[Any, str]:
        """(JointTrajectory to execute, '') or (None, why not)."""
        waypoints = self.tip_waypoints(segment)
        if len(waypoints) == 0:
            return None, ''
        if not self.move_group.wait_for_planner(self.service_timeout_s):
            return None, f'MoveIt service {self.cartesian_path_service} is not available'
        res = wait_future(
            self.move_group.compute_cartesian_path(self.cartesian_request(q_now, waypoints)),
            self.service_timeout_s,
        )
        if res is None:
            return None, (
                f'MoveIt service {self.cartesian_path_service} did not answer in '
                f'{self.service_timeout_s} s'
            )
        code = int(res.error_code.val)
        fraction = float(res.fraction)
        if fraction < 1.0 - 1e-9:
            why = self._partial(segment, waypoints, fraction)
            if code != self._success:
                why += f' (error {self._error_names.get(code, code)})'
            return None, why
        if code != self._success:
            return None, f'MoveIt Cartesian path failed: {self._error_names.get(code, code)}'
        traj = res.solution.joint_trajectory
        if not traj.points:
            return None, 'MoveIt returned an empty Cartesian path'
        index = {n: i for i, n in enumerate(traj.joint_names)}
        missing = [n for n in self.joint_names if n not in index]
        if missing:
            return None, f'MoveIt trajectory lacks joints {missing} (group {self.group_name})'
        path = np.array([[p.positions[index[n]] for n in self.joint_names] for p in traj.points])
        jump = joint_jumps(
            np.vstack([q_now[None], path]), self.joint_names, self.revolute_jump_threshold_rad
        )
        if jump:
            return None, jump
        end = path[-1]
        q_end = np.asarray(segment.positions_rad, dtype=float)[-1]
        err = np.abs(end - q_end)
        if float(err.max()) > self.end_tolerance_rad:
            j = int(err.argmax())
            return None, (
                f'MoveIt reached the path in another arm configuration: {self.joint_names[j]} '
                f'would end {err[j]:.3f} rad from the planned (validated) end'
            )
        self._stretch(traj, float(segment.duration_s))
        return traj, ''

    def _partial(self, segment: Any, waypoints: np.ndarray, fraction: float) -> str:
        """Why a partial Cartesian path is rejected, naming how far MoveIt got."""
        tip_T_tcp = np.linalg.inv(self._tcp_T_tip)
        path = np.vstack(
            [self.planner.forward_tcp(np.asarray(segment.positions_rad[0]))[:3, 3]]
            + [(w @ tip_T_tcp)[:3, 3] for w in waypoints]
        )
        arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(path, axis=0), axis=1))])
        reached = int(np.count_nonzero(arc[1:] <= fraction * arc[-1] + 1e-9))
        return (
            f'MoveIt computed only {fraction * 100:.1f}% of the Cartesian path: it reached '
            f'{reached} of {len(waypoints)} waypoints and stopped near TCP '
            f'{fmt_point(point_along(path, fraction))} m in {self.planning_frame}; beyond it '
            'lies a '
            'collision in the planning scene, a joint limit or a joint jump'
        )

    def _stretch(self, traj: Any, min_duration_s: float) -> None:
        """Never run faster than the plan (it carries the goal's speed scale)."""
        times = np.array([seconds(p.time_from_start) for p in traj.points])
        if times[-1] <= 0:  # untimed: spread the points over the planned duration
            times = np.linspace(0.0, max(min_duration_s, 1e-3), len(times))
            for p, t in zip(traj.points, times, strict=True):
                p.time_from_start = _duration(self._Duration, float(t))
                p.velocities, p.accelerations = [], []
            return
        new, factor = stretch_timing(times, min_duration_s)
        if factor == 1.0:
            return
        for p, t in zip(traj.points, new, strict=True):
            p.time_from_start = _duration(self._Duration, float(t))
            p.velocities = [float(v) / factor for v in p.velocities]
            p.accelerations = [float(a) / factor**2 for a in p.accelerations]

    # --- execution ------------------------------------------------------------------------
    def execute(
        self,
        segment: Any,
        interrupt: Callable[[], Interrupt | None],
        progress: Callable[[float], None],
    ) -> MotionResult:
        """Plan the segment's tool path with MoveIt and execute it through MoveIt.

        Returns:
            DONE, STOPPED (the interrupt's reason) or FAILED (MoveIt's partial fraction, error
            code, lost joint state, ...). A FAILED from planning means nothing moved.
        """
        if self._halted:
            return MotionResult(MotionStatus.STOPPED, self._halted, self._halted)
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
        traj, why_not = self._plan_segment(segment, q_now)
        if traj is None:
            if why_not:
                return MotionResult(MotionStatus.FAILED, f'not executed: {why_not}')
            return MotionResult(MotionStatus.DONE)
        return self._run(traj, qs[-1], interrupt, progress)

    def _run(
        self,
        traj: Any,
        q_end: np.ndarray,
        interrupt: Callable[[], Interrupt | None],
        progress: Callable[[float], None],
    ) -> MotionResult:
        if not self.move_group.wait_for_executor(self.service_timeout_s):
            return MotionResult(
                MotionStatus.FAILED, f'MoveIt action {self.execute_action} is not available'
            )
        goal = self._ExecuteTrajectory.Goal()
        goal.trajectory.joint_trajectory = traj
        handle = wait_future(self.move_group.send_goal(goal), self.service_timeout_s)
        if handle is None or not handle.accepted:
            return MotionResult(
                MotionStatus.FAILED,
                f'MoveIt did not accept the trajectory on {self.execute_action}',
            )
        result_future = handle.get_result_async()
        duration = max(seconds(traj.points[-1].time_from_start), 1e-6)
        t0 = time.monotonic()
        timeout = 2.0 * duration + self.service_timeout_s
        while not result_future.done():
            why = self._halted or interrupt()
            if why:
                not_stopped = self._stop_motion(handle)
                if not_stopped:
                    return MotionResult(MotionStatus.FAILED, f'{why}: {not_stopped}', str(why))
                return MotionResult(MotionStatus.STOPPED, str(why), str(why))
            try:
                self.state.get(self.state_timeout_s)
            except BackendError as exc:
                self._stop_motion(handle)
                return MotionResult(MotionStatus.FAILED, f'lost joint state during motion: {exc}')
            elapsed = time.monotonic() - t0
            if elapsed > timeout:
                self._stop_motion(handle)
                return MotionResult(
                    MotionStatus.FAILED, f'MoveIt execution did not finish within {timeout:.1f} s'
                )
            progress(min(elapsed / duration, 1.0))
            time.sleep(self.control_period_s)
        if self._halted:  # halt() stopped MoveIt first: its result (PREEMPTED) is that stop
            not_stopped = self._stop_motion(handle)
            if not_stopped:
                return MotionResult(MotionStatus.FAILED, f'{self._halted}: {not_stopped}')
            return MotionResult(MotionStatus.STOPPED, self._halted, self._halted)
        code = int(result_future.result().result.error_code.val)
        if code != self._success:
            return MotionResult(
                MotionStatus.FAILED,
                f'MoveIt execution failed: {self._error_names.get(code, code)}',
            )
        return self._settle(q_end, progress)

    def _settle(self, q_end: np.ndarray, progress: Callable[[float], None]) -> MotionResult:
        deadline = time.monotonic() + self.settle_timeout_s
        while True:
            try:
                q, _ = self.state.get(self.state_timeout_s)
            except BackendError as exc:
                return MotionResult(MotionStatus.FAILED, f'lost joint state at the end: {exc}')
            err = np.abs(q - q_end)
            if float(err.max()) <= self.goal_tolerance_rad:
                progress(1.0)
                return MotionResult(MotionStatus.DONE)
            if time.monotonic() > deadline:
                j = int(err.argmax())
                return MotionResult(
                    MotionStatus.FAILED,
                    f'{self.joint_names[j]} ended {err[j]:.3f} rad from the goal (tolerance '
                    f'{self.goal_tolerance_rad} rad)',
                )
            time.sleep(self.control_period_s)

    def stop(self) -> None:
        """Stop MoveIt's trajectory execution now (``trajectory_execution_event`` "stop")."""
        self.execution_event_pub.publish(self._String(data='stop'))

    def halt(self, reason: str) -> None:
        """Stop the arm for good (executor shutdown): both stops now, every later motion refused.

        The running :meth:`execute` stops (and confirms) at its next check; later calls return
        STOPPED at once.
        """
        self._halted = reason or 'halted'
        self.stop()
        self.hold_controller()

    def hold_controller(self) -> None:
        """Replace the controller's trajectory with a short stop from the measured state."""
        msg = self._JointTrajectory(joint_names=list(self.joint_names))
        try:
            q, v = self.state.get(self.state_timeout_s)
        except BackendError:
            self.controller_pub.publish(msg)  # empty: what is left to send
            return
        t_stop = min(max(float(np.abs(v).max()) / 8.0, 0.05), 0.5)
        point = self._JointTrajectoryPoint(
            positions=[float(x) for x in q + 0.5 * v * t_stop],
            velocities=[0.0] * len(q),
            time_from_start=_duration(self._Duration, t_stop),
        )
        msg.points = [point]
        self.controller_pub.publish(msg)

    def at_rest(self, timeout_s: float, window_s: float = 0.3) -> tuple[bool, str]:
        """Watch ``/joint_states`` until the arm is at rest, for at most ``timeout_s``.

        At rest: in both halves of ``window_s`` of fresh samples no joint moved faster than
        ``rest_speed_rad_s`` (positions, not the reported velocities, which a driver may omit).
        Two halves, because an arm whose trajectory is just starting is slow too: it shows as
        moving in the second half.

        Returns:
            (at rest, '' or which joint still moves and how fast).
        """
        deadline = time.monotonic() + timeout_s
        why = 'no fresh joint state'
        half = window_s / 2.0
        while True:
            try:
                n0 = self.state.count
                q0, _ = self.state.get(self.state_timeout_s)
                t0 = time.monotonic()
                time.sleep(half)
                q1, _ = self.state.get(self.state_timeout_s)
                t1 = time.monotonic()
                time.sleep(half)
                q2, _ = self.state.get(self.state_timeout_s)
                t2 = time.monotonic()
            except BackendError as exc:
                why = str(exc)
            else:
                if self.state.count >= n0 + 3:
                    speed = np.maximum(
                        np.abs(q1 - q0) / max(t1 - t0, 1e-3), np.abs(q2 - q1) / max(t2 - t1, 1e-3)
                    )
                    j = int(speed.argmax())
                    if float(speed[j]) <= self.rest_speed_rad_s:
                        return True, ''
                    why = f'{self.joint_names[j]} still moving at {speed[j]:.3f} rad/s'
            if time.monotonic() >= deadline:
                return False, why

    def _stop_motion(self, handle: Any) -> str:
        """Stop the arm, whatever move_group does with the cancel; '' once it is at rest.

        Cancel the goal (Jazzy accepts and ignores it), send the execution manager "stop",
        confirm from the joint states; if the arm still moves, stop the controller directly and
        confirm again.

        Returns:
            '' when the joint states show the arm at rest, else why it is not.
        """
        t0 = time.monotonic()
        try:
            handle.cancel_goal_async()
        except Exception as exc:  # noqa: BLE001 - the stop below does not depend on it
            self.node.get_logger().warn(f'cancelling the MoveIt goal failed: {exc}')
        self.stop()
        rest, why = self.at_rest(self.stop_timeout_s)
        if rest:
            self.last_stop = (
                f'stopped by trajectory_execution_event in {time.monotonic() - t0:.2f} s'
            )
            self.node.get_logger().info(f'MoveIt execution {self.last_stop}')
            return ''
        self.node.get_logger().warn(
            f'the arm still moves {self.stop_timeout_s:g} s after the MoveIt cancel and the '
            f'"stop" event ({why}): stopping the controller on {self.controller_topic}'
        )
        self.hold_controller()
        rest, why = self.at_rest(self.stop_timeout_s)
        if rest:
            self.last_stop = (
                f'stopped through {self.controller_topic} in {time.monotonic() - t0:.2f} s'
            )
            self.node.get_logger().info(f'MoveIt execution {self.last_stop}')
            return ''
        self.last_stop = f'not stopped: {why}'
        return (
            f'the arm did not stop: {why} {time.monotonic() - t0:.1f} s after the MoveIt cancel, '
            f'the "stop" event and a stop on {self.controller_topic}'
        )

    # --- gripper --------------------------------------------------------------------------
    def gripper(self, close: bool, segment: Any = None) -> tuple[bool, str]:
        """The gripper adapter, or the SetBool service. Returns (success, its message)."""
        if self._gripper is not None:
            return self._gripper(bool(close))
        return call_gripper(
            self.gripper_client,
            self.gripper_service,
            self._SetBool.Request(data=close),
            self.gripper_timeout_s,
        )
