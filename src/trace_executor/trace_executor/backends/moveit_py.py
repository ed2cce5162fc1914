"""``moveit_py`` backend: MoveIt in-process through moveit_py (MoveIt 2 Jazzy's Python API).

Design notes: docs/design-notes.md (trace_executor.backends.moveit_py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
import os
import threading
import time
from typing import Any

import numpy as np

from trace_executor.execution import BackendError, Halting, Interrupt, MotionResult, MotionStatus

MOVEIT_PY_MISSING = (
    'moveit_py backend needs moveit_py (MoveIt 2 Python bindings, ros-jazzy-moveit-py; use the '
    'docker image)'
)

#: ``moveit_py.planning``: who plans the motions
PLANNING_MODES = ('own_path', 'moveit')
#: the Pilz industrial motion planner: straight tool lines (LIN) between key poses
PILZ = 'pilz_industrial_motion_planner'


@dataclass(frozen=True)
class MoveItPyOptions:
    """How the moveit_py backend plans (the ``moveit_py.*`` parameters of ur5_executor).

    Attributes:
        config_file: YAML of MoveIt's parameters for MoveItPy (``/**: ros__parameters:``), as
            the bringup writes it from ur_moveit_config (:func:`robotracer_ros.bringup
            .moveit_py_config_file`).
        planning: ``own_path``: the planner's timed path, checked in MoveIt's planning scene
            and executed by MoveIt; ``moveit``: every straight piece of the tool path (key pose
            to key pose) planned by MoveIt's ``pipeline``/``planner_id`` from the current state
            to the IK joint target of its end, then executed by MoveIt.
        pipeline: planning pipeline for ``moveit`` (Pilz: straight tool lines).
        planner_id: its planner (Pilz: ``LIN``).
        planning_time_s: time allowed per plan request, s.
        planning_attempts: attempts per plan request.
    """

    config_file: str = ''
    planning: str = 'own_path'
    pipeline: str = PILZ
    planner_id: str = 'LIN'
    planning_time_s: float = 5.0
    planning_attempts: int = 1

    @classmethod
    def from_params(cls, p: Mapping[str, Any]) -> MoveItPyOptions:
        """From the node's ``moveit_py.*`` parameters.

        Raises:
            ValueError: an unknown planning mode, or ``moveit`` without a pipeline or planner.
        """
        out = cls(
            config_file=str(p['moveit_py.config_file']),
            planning=str(p['moveit_py.planning']),
            pipeline=str(p['moveit_py.pipeline']),
            planner_id=str(p['moveit_py.planner_id']),
            planning_time_s=float(p['moveit_py.planning_time_s']),
            planning_attempts=int(p['moveit_py.planning_attempts']),
        )
        if out.planning not in PLANNING_MODES:
            raise ValueError(
                f'moveit_py.planning must be one of {", ".join(PLANNING_MODES)}, got '
                f'{out.planning!r}'
            )
        if out.planning == 'moveit' and not (out.pipeline and out.planner_id):
            raise ValueError(
                'moveit_py.planning moveit needs moveit_py.pipeline and moveit_py.planner_id '
                f'(e.g. {PILZ} and LIN)'
            )
        return out


def load_moveit_config(options: MoveItPyOptions) -> dict[str, Any]:
    """MoveIt's parameters from ``options.config_file``, checked for what MoveItPy needs.

    Returns:
        The parameters (the ``ros__parameters`` of the file's ``/**`` block).

    Raises:
        BackendError: no file, unreadable, not a parameter file, no semantic description or
            planning pipelines, or ``planning: moveit`` with a pipeline MoveIt does not load;
            each names what is missing and where it comes from.
    """
    import yaml

    path = options.config_file
    how = (
        'the bringup writes it from ur_moveit_config (ros2 launch robotracer_ros ur5.launch.py '
        'robot_backend:=moveit_py)'
    )
    if not path:
        raise BackendError(
            f"moveit_py needs MoveIt's parameters: moveit_py.config_file is empty; {how}"
        )
    if not os.path.isfile(path):
        raise BackendError(f'moveit_py.config_file {path} does not exist; {how}')
    try:
        with open(path) as f:
            data = yaml.safe_load(f) or {}
        params = data['/**']['ros__parameters']
    except (OSError, yaml.YAMLError, KeyError, TypeError) as exc:
        raise BackendError(
            f'moveit_py.config_file {path} is not a parameter file with a /** block: {exc!r}'
        ) from exc
    missing = [
        k for k in ('robot_description_semantic', 'planning_pipelines') if not params.get(k)
    ]
    if missing:
        raise BackendError(f'moveit_py.config_file {path} lacks {", ".join(missing)}; {how}')
    pipelines = params['planning_pipelines']
    names = list(pipelines.get('pipeline_names', [])) if isinstance(pipelines, dict) else []
    if not names:
        raise BackendError(
            f'moveit_py.config_file {path}: planning_pipelines.pipeline_names is empty (MoveItPy '
            'loads the pipelines named there)'
        )
    if options.planning == 'moveit' and options.pipeline not in names:
        raise BackendError(
            f'moveit_py.planning moveit plans with the {options.pipeline} pipeline, which '
            f'MoveIt does not load here (planning_pipelines.pipeline_names: {", ".join(names)}); '
            f'set moveit_py.pipeline to one of them or add {options.pipeline} to the MoveIt '
            'configuration'
        )
    return params


def straight_pieces(plan: Any) -> dict[tuple[int, int], list[np.ndarray]]:
    """Per motion segment: the IK joint targets at the ends of its straight tool pieces.

    The UR5 tool path is straight between consecutive key poses (positions linear, orientations
    along the geodesic: :func:`trace_executor.ur5.tool_path.tool_path`), which is what Pilz's
    LIN plans; a segment (between gripper events) covers one or more such pieces.

    Args:
        plan: a :class:`~trace_executor.ur5.plan_types.Plan`.

    Returns:
        ``segment.path_range`` → the joint targets (6,) of the segment's pieces, in order.
    """
    keys = sorted(set(int(k) for k in plan.tool_path.key_indices))
    out: dict[tuple[int, int], list[np.ndarray]] = {}
    for seg in plan.motions:
        a, b = (int(v) for v in seg.path_range)
        ends = [k for k in keys if a < k < b] + [b]
        out[(a, b)] = [np.asarray(plan.joint_path_rad[k], dtype=float).copy() for k in ends]
    return out


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


def trajectory_positions(msg: Any, joint_names: tuple[str, ...]) -> np.ndarray:
    """(K, J) positions of a ``moveit_msgs/RobotTrajectory`` in ``joint_names`` order.

    Raises:
        BackendError: the trajectory lacks one of the joints.
    """
    jt = msg.joint_trajectory
    try:
        cols = [list(jt.joint_names).index(n) for n in joint_names]
    except ValueError as exc:
        raise BackendError(
            f"MoveIt's trajectory has joints {list(jt.joint_names)}, not {list(joint_names)}"
        ) from exc
    return np.array([[p.positions[c] for c in cols] for p in jt.points], dtype=float).reshape(
        -1, len(joint_names)
    )


def trajectory_duration(msg: Any) -> float:
    """Duration of a ``moveit_msgs/RobotTrajectory``, s."""
    points = msg.joint_trajectory.points
    if not points:
        return 0.0
    t = points[-1].time_from_start
    return float(t.sec) + float(t.nanosec) * 1e-9


class MoveItPyBackend(Halting):
    """MoveIt in-process: plan (or check) with MoveIt, execute with its execution manager.

    ``options.planning`` says who plans: ``own_path`` (the planner's timed path, checked in
    MoveIt's planning scene) or ``moveit`` (MoveIt's ``PlanningComponent``, one plan request per
    straight tool piece, :func:`straight_pieces`; the node hands each plan over with
    :meth:`use_plan` before it runs).

    Args:
        node: the executor node (joint states; spun by a MultiThreadedExecutor elsewhere).
        joint_names: the arm's joints, planner order.
        group_name: MoveIt planning group (``ur_manipulator``).
        joint_states_topic: sensor_msgs/JointState topic.
        gripper: a gripper adapter (``trace_executor.backends.grippers``) or None.
        options: how to plan, and MoveIt's parameters (:class:`MoveItPyOptions`).
        state_timeout_s: joint states older than this are stale, s.
        start_tolerance_rad: the arm may be this far from a segment's planned start, rad.
        goal_tolerance_rad: joint error accepted at the end, rad.
        max_jump_rad: largest joint change between points of a MoveIt plan, rad.
        stop_timeout_s: time allowed for a stop to show in the joint states, s.
        rest_speed_rad_s: the arm is at rest below this joint speed, rad/s.
        control_period_s: how often ``interrupt()`` is checked, s.

    Raises:
        BackendError: moveit_py is not importable, MoveIt's parameters are missing or lack the
            pipeline to plan with, or MoveItPy could not start.
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
        options: MoveItPyOptions | None = None,
        state_timeout_s: float = 0.5,
        start_tolerance_rad: float = 0.05,
        goal_tolerance_rad: float = 0.02,
        max_jump_rad: float = 0.3,
        stop_timeout_s: float = 2.0,
        rest_speed_rad_s: float = 0.01,
        control_period_s: float = 0.01,
    ) -> None:
        try:
            from moveit.core.robot_state import RobotState
            from moveit.core.robot_trajectory import RobotTrajectory
            from moveit.planning import MoveItPy, PlanRequestParameters
            from moveit_msgs.msg import RobotTrajectory as RobotTrajectoryMsg
        except ImportError as exc:
            raise BackendError(f'{MOVEIT_PY_MISSING}: {exc}') from exc
        from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
        from rclpy.qos import QoSProfile
        from sensor_msgs.msg import JointState
        from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

        from trace_executor.backends.ros2_control import JointStateCache, _duration

        self.options = options or MoveItPyOptions()
        load_moveit_config(self.options)  # raises naming what is missing
        self._RobotState = RobotState
        self._RobotTrajectory = RobotTrajectory
        self._RobotTrajectoryMsg = RobotTrajectoryMsg
        self._PlanRequestParameters = PlanRequestParameters
        self._JointTrajectory = JointTrajectory
        self._JointTrajectoryPoint = JointTrajectoryPoint
        self._duration = _duration
        namespace = node.get_namespace().rstrip('/')
        try:  # its own rclcpp node, in the executor's namespace, with MoveIt's parameters
            self.moveit = MoveItPy(
                node_name=f'{node.get_name()}_moveit_py',
                name_space=namespace,
                launch_params_filepaths=[self.options.config_file],
            )
        except Exception as exc:  # noqa: BLE001 - MoveItPy raises RuntimeError and others
            raise BackendError(f'MoveItPy could not start: {exc}') from exc
        self.node = node
        self.joint_names = tuple(joint_names)
        self.group_name = group_name
        self.robot_model = self.moveit.get_robot_model()
        self.scene_monitor = self.moveit.get_planning_scene_monitor()
        self.execution = self.moveit.get_trajectory_execution_manager()
        self.planning_component = self.moveit.get_planning_component(group_name)
        self._gripper = gripper
        self.state_timeout_s = float(state_timeout_s)
        self.start_tolerance_rad = float(start_tolerance_rad)
        self.goal_tolerance_rad = float(goal_tolerance_rad)
        self.max_jump_rad = float(max_jump_rad)
        self.stop_timeout_s = float(stop_timeout_s)
        self.rest_speed_rad_s = float(rest_speed_rad_s)
        self.control_period_s = float(control_period_s)
        self._pieces: dict[tuple[int, int], list[np.ndarray]] = {}
        self._speed_scale = 1.0
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

    def use_plan(self, plan: Any) -> None:
        """The plan whose segments run next (``planning: moveit`` plans its straight pieces)."""
        self._pieces = straight_pieces(plan)
        self._speed_scale = float(plan.speed_scale)

    # --- own_path: MoveIt checks the planner's path ---------------------------------------
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
        jump = joint_jumps(np.vstack([q_now[None], q]), self.joint_names, self.max_jump_rad)
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

    # --- moveit: MoveIt plans every straight piece -----------------------------------------
    def _request(self) -> Any:
        o = self.options
        # (moveit_cpp, namespace): '' loads plan_request_params.* (the bringup writes them)
        params = self._PlanRequestParameters(self.moveit, '')
        params.planning_pipeline = o.pipeline
        params.planner_id = o.planner_id
        params.planning_time = o.planning_time_s
        params.planning_attempts = o.planning_attempts
        params.max_velocity_scaling_factor = self._speed_scale
        params.max_acceleration_scaling_factor = self._speed_scale
        return params

    def plan_pieces(self, segment: Any) -> tuple[list[Any] | None, str]:
        """MoveIt's trajectories for the segment's straight pieces, all planned before moving.

        Returns:
            (``moveit_msgs/RobotTrajectory`` per piece, '') or (None, why not: no plan given,
            MoveIt found no path for a piece, or a piece's joints jump).
        """
        from trace_executor.backends.moveit import joint_jumps

        targets = self._pieces.get(tuple(int(v) for v in segment.path_range))
        if not targets:
            return None, 'no plan was handed to the moveit_py backend for this motion (use_plan)'
        o = self.options
        pc = self.planning_component
        params = self._request()
        msgs: list[Any] = []
        start = None
        for i, q in enumerate(targets):
            if start is None:
                pc.set_start_state_to_current_state()
            else:
                pc.set_start_state(robot_state=start)
            goal = self._RobotState(self.robot_model)
            goal.set_joint_group_positions(self.group_name, np.asarray(q, dtype=float))
            goal.update()
            pc.set_goal_state(robot_state=goal)
            result = pc.plan(single_plan_parameters=params)
            if not result:
                return None, (
                    f'MoveIt ({o.pipeline} {o.planner_id}) found no path for straight piece '
                    f'{i + 1} of {len(targets)} (MoveItErrorCodes {result.error_code.val}): '
                    'nothing executed'
                )
            msg = result.trajectory.get_robot_trajectory_msg()
            jump = joint_jumps(
                trajectory_positions(msg, self.joint_names), self.joint_names, self.max_jump_rad
            )
            if jump:
                return None, f'piece {i + 1} of {len(targets)}: {jump}'
            msgs.append(msg)
            start = goal
        return msgs, ''

    # --- execution ------------------------------------------------------------------------
    def execute(
        self,
        segment: Any,
        interrupt: Callable[[], Interrupt | None],
        progress: Callable[[float], None],
    ) -> MotionResult:
        """Plan (or check) the motion with MoveIt, execute it through MoveIt, stop on interrupt."""
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
        if self.options.planning == 'moveit':
            msgs, why = self.plan_pieces(segment)
            if msgs is None:
                return MotionResult(MotionStatus.FAILED, why)
            duration = sum(trajectory_duration(m) for m in msgs)
        else:
            msg, why = self.check_path(segment, q_now)
            if msg is None:
                return MotionResult(MotionStatus.FAILED, f'not executed: {why}')
            msgs, duration = [msg], float(np.asarray(segment.times_s)[-1])
        return self._run(msgs, max(duration, 1e-6), qs[-1], interrupt, progress)

    def _run(
        self,
        msgs: list[Any],
        duration: float,
        q_goal: np.ndarray,
        interrupt: Callable[[], Interrupt | None],
        progress: Callable[[float], None],
    ) -> MotionResult:
        done = threading.Event()
        status: list[Any] = []

        def finished(s: Any) -> None:
            status.append(s)
            done.set()

        for msg in msgs:
            if not self.execution.push(msg, ''):
                self.execution.clear()
                return MotionResult(MotionStatus.FAILED, 'MoveIt refused the trajectory (push)')
        self.execution.execute(finished, True)
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
        # moveit_py's ExecutionStatus: truthy only when SUCCEEDED, ``status`` names it
        if not status or not bool(status[0]):
            ended = status[0].status if status else 'without a status'
            return MotionResult(MotionStatus.FAILED, f'MoveIt execution ended {ended}')
        q, _ = self.state.get(self.state_timeout_s)
        err = np.abs(q - q_goal)
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
