"""What every executor node shares: action servers, goal admission, feedback, the trace query.

Also trace messages ↔ :class:`~trace_executor.execution.TraceInput` and static transforms.

A robot's node (UR5, G1) subclasses :class:`ExecutorNode` and provides a
:class:`~trace_executor.execution.GoalRunner` (planner + backend + scene watcher).
"""

from __future__ import annotations

from collections.abc import Callable
import copy
from dataclasses import replace
import threading
import time
import traceback
from typing import Any

from geometry_msgs.msg import Point
import numpy as np
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.node import Node

from robotracer_commander import wait_future
from robotracer_msgs.action import ExecuteInstruction, ExecuteTrace
from robotracer_msgs.msg import SpatialTrace
from robotracer_msgs.srv import GetTrace
from robotracer_ros.parameters import Param, declare_all
from robotracer_ros.trace_service import StaticTransforms
from robotracer_ros.transforms import (
    Tf2Lookup,
    TfThenParameter,
    transform_from_translation_quaternion,
)
from trace_executor.errors import ErrorCode, PlanningError
from trace_executor.execution import (
    GoalRunner,
    GoalSpec,
    Outcome,
    PerceptionError,
    Phase,
    TraceInput,
    validate_goal,
)
from trace_executor.trace_check import check_message

try:  # tf2_ros exists on a full ROS install only (not on PyPI)
    import tf2_ros  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - depends on the install
    tf2_ros = None

COMMON_PARAMS = [
    Param('base_frame', 'base_link', 'robot base frame: traces are planned in it'),
    Param('trace_service', 'robotracer/get_trace', 'GetTrace service of the perception node'),
    Param(
        'trace_timeout_s', 30.0, 'longest wait for the trace service (model time), s', 1.0, 600.0
    ),
    Param(
        'default_mode',
        'pick_place',
        'mode when a goal leaves it empty: pick_place | push | follow',
    ),
    Param(
        'default_speed_scale',
        0.5,
        'speed scale when a goal leaves it 0, fraction of the limits',
        0.01,
        1.0,
    ),
    Param('max_replans', 3, 'replans allowed per goal before it fails', 0, 20),
    Param('camera_frame', 'camera_color_optical_frame', 'optical frame of the RGB-D camera'),
    Param(
        'camera_to_base_xyz',
        [0.0, 0.0, 0.0],
        'camera pose when tf has none (a fixed camera): position of camera_frame in '
        'base_frame, metres',
    ),
    Param(
        'camera_to_base_quat_xyzw',
        [0.0, 0.0, 0.0, 1.0],
        'camera pose when tf has none: orientation of camera_frame in base_frame (x, y, z, w)',
    ),
    Param(
        'use_tf2',
        True,
        'take the camera pose from tf (/tf_static: hand-eye calibration) when tf has it, else '
        'from camera_to_base_*; the log says which (tf2_ros: ROS install only)',
    ),
    Param('tf_timeout_s', 0.0, 'longest wait for a tf lookup, s', 0.0, 5.0),
]


class ExecutorNode(Node):
    """Action servers ``execute_trace`` / ``execute_instruction`` around a GoalRunner.

    Names are relative (``robotracer/execute_trace``): a namespace puts the whole bringup
    under it (``namespace:=/left``).
    """

    def __init__(self, name: str, params: list[Param], *, fixed_camera: bool = True) -> None:
        super().__init__(name)
        self.p = declare_all(self, COMMON_PARAMS + params)
        self.base_frame = self.p['base_frame']
        #: the camera_to_base_* parameters: camera_frame in base_frame
        self.static_tf = {
            self.p['camera_frame']: transform_from_translation_quaternion(
                self.p['camera_to_base_xyz'], self.p['camera_to_base_quat_xyzw']
            )
        }
        self._parameter_tf = StaticTransforms()
        for frame, T in self.static_tf.items():
            self._parameter_tf.add(self.base_frame, frame, T)
        # A fixed camera (the UR5 cell): tf when it has the pose (a hand-eye calibration on
        # /tf_static), else the parameters, logged as the perception node does.
        self._tf_buffer = None
        if fixed_camera and self.p['use_tf2'] and tf2_ros is not None:
            self._tf_buffer = tf2_ros.Buffer()
            self._tf_listener = tf2_ros.TransformListener(self._tf_buffer, self)
        self.transforms = TfThenParameter(
            Tf2Lookup(self._tf_buffer, self.p['tf_timeout_s'])
            if self._tf_buffer is not None
            else None,
            self._parameter_tf,
            lambda m: self.get_logger().info(m),
            parameter_name='camera_to_base_*',
        )
        self.runner: GoalRunner | None = None
        self._busy = threading.Lock()
        self._current_goal: Any = None
        self._preempt = threading.Event()  # the running goal must end (see end_running_goal)
        self._ended_by: ErrorCode | None = None  # PREEMPTED or SHUTDOWN
        self.trace_client = self.create_client(
            GetTrace, self.p['trace_service'], callback_group=MutuallyExclusiveCallbackGroup()
        )
        group = ReentrantCallbackGroup()
        self.trace_server = ActionServer(
            self,
            ExecuteTrace,
            'robotracer/execute_trace',
            self._execute_trace,
            goal_callback=self._on_goal,
            cancel_callback=self._on_cancel,
            callback_group=group,
        )
        self.instruction_server = ActionServer(
            self,
            ExecuteInstruction,
            'robotracer/execute_instruction',
            self._execute_instruction,
            goal_callback=self._on_goal,
            cancel_callback=self._on_cancel,
            callback_group=group,
        )

    # --- transforms and messages ----------------------------------------------------------
    def transform_to_base(self, frame_id: str) -> np.ndarray | None:
        """base_T_frame for ``frame_id`` (None for the base frame, or when unknown).

        From tf when it has the transform, else from the ``camera_to_base_*`` parameters; the
        log says which (:class:`~robotracer_ros.transforms.TfThenParameter`).
        """
        if frame_id in ('', self.base_frame):
            return None
        try:
            return self.transforms(self.base_frame, frame_id, 0.0)
        except LookupError:
            return None

    def camera_pose(self) -> np.ndarray | None:
        """base_T_camera now (tf, else the parameters), or None when neither has it."""
        return self.transform_to_base(self.p['camera_frame'])

    def trace_input(self, msg: SpatialTrace) -> TraceInput:
        """A SpatialTrace → TraceInput, rejecting what cannot be planned.

        Raises:
            PlanningError: INVALID_TRACE (no points, marked invalid, unknown frame).
        """
        check_message(len(msg.points), msg.status, msg.quality_note)
        frame = msg.header.frame_id or self.base_frame
        tf = self.transform_to_base(frame)
        if frame != self.base_frame and tf is None:
            raise PlanningError(
                ErrorCode.INVALID_TRACE,
                None,
                f'trace frame {frame!r} is not {self.base_frame!r} and no '
                f'transform to it is known (not on tf; the parameters know '
                f'{", ".join(self.static_tf)})',
            )
        pts = np.array([[p.x, p.y, p.z] for p in msg.points], dtype=float)
        return TraceInput(pts, frame, tf, msg)

    def to_msg(self, trace: TraceInput | None) -> SpatialTrace:
        """The trace in the base frame as a SpatialTrace (empty message for None)."""
        if trace is None:
            return SpatialTrace()
        msg = SpatialTrace()
        if trace.message is not None:
            msg = trace.message
        if trace.transform is not None:
            # the same message (answer, pixels, depths, status) with its points in the base frame
            pts = trace.points @ trace.transform[:3, :3].T + trace.transform[:3, 3]
            out = copy.deepcopy(msg)
            out.header.frame_id = self.base_frame
            out.points = [Point(x=float(p[0]), y=float(p[1]), z=float(p[2])) for p in pts]
            return out
        if trace.message is None:
            msg.header.frame_id = trace.frame_id
            msg.points = [Point(x=float(p[0]), y=float(p[1]), z=float(p[2])) for p in trace.points]
        return msg

    # --- perception ------------------------------------------------------------------------
    def perceive(self, instruction: str) -> TraceInput:
        """Ask the perception node for a trace in the base frame.

        Raises:
            PerceptionError: service missing, timed out or answered success=false (its reason).
        """
        if not self.trace_client.wait_for_service(timeout_sec=5.0):
            raise PerceptionError(
                f'trace service {self.p["trace_service"]} is not available '
                '(is the perception node running?)'
            )
        req = GetTrace.Request(instruction=instruction, target_frame=self.base_frame)
        res = wait_future(self.trace_client.call_async(req), self.p['trace_timeout_s'])
        if res is None:
            raise PerceptionError(f'trace service did not answer in {self.p["trace_timeout_s"]} s')
        if not res.success:
            raise PerceptionError(f'perception failed (error {res.error_code}): {res.error_msg}')
        try:
            return self.trace_input(res.trace)
        except PlanningError as exc:
            raise PerceptionError(str(exc)) from exc

    # --- actions ---------------------------------------------------------------------------
    def _on_goal(self, goal: Any) -> GoalResponse:
        if self._busy.locked():
            if goal.preempt and self._current_goal is not None:
                self.get_logger().info('new goal preempts the running one')
                self.end_running_goal(ErrorCode.PREEMPTED)
                return GoalResponse.ACCEPT
            self.get_logger().warn(
                'goal rejected: another goal is running (set preempt to replace it)'
            )
            return GoalResponse.REJECT
        return GoalResponse.ACCEPT

    def _on_cancel(self, _goal: Any) -> CancelResponse:
        self.get_logger().info('cancel requested: stopping')
        return CancelResponse.ACCEPT

    def _execute_trace(self, handle: Any) -> ExecuteTrace.Result:
        g = handle.request
        result = ExecuteTrace.Result()
        try:
            trace = self.trace_input(g.trace)
            spec = GoalSpec('', trace, g.dry_run, g.speed_scale, False, g.mode)
        except PlanningError as exc:
            return self._finish(None, handle, result, Outcome(False, exc.code, exc.message))
        return self._run(handle, ExecuteTrace, spec, result)

    def _execute_instruction(self, handle: Any) -> ExecuteInstruction.Result:
        g = handle.request
        spec = GoalSpec(
            g.instruction, None, g.dry_run, g.speed_scale, not g.disable_replanning, g.mode
        )
        return self._run(handle, ExecuteInstruction, spec, ExecuteInstruction.Result())

    def _run(self, handle: Any, action: Any, spec: GoalSpec, result: Any) -> Any:
        heartbeat = _Heartbeat(handle, action.Feedback())
        try:
            return self._run_goal(handle, action, spec, result, heartbeat)
        finally:
            heartbeat.stop()

    def _run_goal(
        self, handle: Any, action: Any, spec: GoalSpec, result: Any, heartbeat: _Heartbeat
    ) -> Any:
        # Wait (briefly) for a preempted goal to stop.
        deadline = time.monotonic() + 5.0
        while not self._busy.acquire(timeout=0.05):
            if time.monotonic() > deadline:
                return self._finish(
                    heartbeat,
                    handle,
                    result,
                    Outcome(False, ErrorCode.BUSY, 'another goal is running'),
                )
        self._preempt.clear()
        self._ended_by = None
        self._current_goal = handle
        try:
            try:
                spec = validate_goal(spec, self.p['default_mode'], self.p['default_speed_scale'])
                self.check_goal(spec)
            except PlanningError as exc:
                return self._finish(
                    heartbeat, handle, result, Outcome(False, exc.code, exc.message)
                )
            if self.runner is None:
                return self._finish(
                    heartbeat,
                    handle,
                    result,
                    Outcome(
                        False, ErrorCode.BACKEND_UNAVAILABLE, 'the robot backend did not start'
                    ),
                )
            what = spec.instruction or f'a {len(spec.trace.points)}-point trace'
            self.get_logger().info(
                f'goal: {what} (mode {spec.mode}, speed {spec.speed_scale}, '
                f'dry_run {spec.dry_run}, replanning {spec.replanning})'
            )

            def feedback(
                phase: Phase, progress: float, replans: int, message: str, trace: TraceInput | None
            ) -> None:
                heartbeat.publish(
                    phase,
                    progress,
                    replans,
                    message,
                    None if trace is None else self.to_msg(trace),
                )

            try:
                outcome = self.runner.run(spec, self._cancelled(handle), feedback)
            except Exception as exc:  # never leave a goal without a result
                self.get_logger().error(f'goal crashed: {exc!r}\n{traceback.format_exc()}')
                if self.runner.backend is not None:
                    self.runner.backend.stop()
                outcome = Outcome(
                    False, ErrorCode.EXECUTION, f'internal error: {type(exc).__name__}: {exc}'
                )
            return self._finish(heartbeat, handle, result, outcome)
        finally:
            self._current_goal = None
            self._busy.release()

    def check_goal(self, spec: GoalSpec) -> None:
        """Refuse a goal this robot cannot do, before anything moves (default: none).

        Raises:
            PlanningError: why not (e.g. ``pick_place`` without a gripper).
        """

    def end_running_goal(self, why: ErrorCode) -> None:
        """Make the running goal stop (the robot stops) and end with ``why``.

        Args:
            why: ``ErrorCode.PREEMPTED`` (a newer goal replaces it) or ``ErrorCode.SHUTDOWN``.
        """
        self._ended_by = why
        self._preempt.set()

    def _cancelled(self, handle: Any) -> Callable[[], bool]:
        return lambda: bool(handle.is_cancel_requested or self._preempt.is_set())

    def _finish(
        self, heartbeat: _Heartbeat | None, handle: Any, result: Any, outcome: Outcome
    ) -> Any:
        if heartbeat is not None:
            heartbeat.stop()
        if (
            outcome.code == ErrorCode.CANCELED
            and not handle.is_cancel_requested
            and self._ended_by is not None
        ):
            what = {
                ErrorCode.PREEMPTED: 'replaced by a newer goal',
                ErrorCode.SHUTDOWN: ('the executor is shutting down'),
            }[self._ended_by]
            outcome = replace(outcome, code=self._ended_by, message=f'{what}: {outcome.message}')
        result.success = outcome.success
        result.error_code = int(outcome.code)
        result.error_msg = outcome.message
        result.replans = int(outcome.replans)
        if outcome.trace is not None:
            result.executed_trace = self.to_msg(outcome.trace)
        log = self.get_logger()
        if outcome.success:
            log.info(f'goal succeeded: {outcome.message}')
            handle.succeed()
        elif outcome.code == ErrorCode.CANCELED and handle.is_cancel_requested:
            log.info(f'goal canceled: {outcome.message}')
            handle.canceled()
        else:
            log.error(f'goal failed ({outcome.code.name}): {outcome.message}')
            handle.abort()
        return result


class _Heartbeat:
    """Feedback of one goal, repeated every ``HEARTBEAT_PERIOD_S`` while the goal runs.

    The action files promise feedback at least that often, so a client tells a silent server
    (a long model call) from a dead one (its process killed).
    """

    HEARTBEAT_PERIOD_S = 0.25

    def __init__(self, handle: Any, fb: Any) -> None:
        self._handle = handle
        self._fb = fb
        self._fb.message = 'goal received'
        self._lock = threading.Lock()
        self._last = 0.0
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._loop, name='goal_heartbeat', daemon=True)
        self._thread.start()

    def publish(
        self,
        phase: Phase,
        progress: float,
        replans: int,
        message: str,
        trace: SpatialTrace | None,
    ) -> None:
        """Publish new feedback now (and repeat it until the next)."""
        with self._lock:
            self._fb.phase = int(phase)
            self._fb.progress = float(progress)
            self._fb.replans = int(replans)
            self._fb.message = message
            if trace is not None:
                self._fb.current_trace = trace
            self._send()

    def _send(self) -> None:
        self._last = time.monotonic()
        try:
            self._handle.publish_feedback(self._fb)
        except Exception:  # noqa: BLE001 - the goal ended or the node is shutting down
            self._stopped.set()

    def _loop(self) -> None:
        while not self._stopped.wait(self.HEARTBEAT_PERIOD_S / 2):
            with self._lock:
                if time.monotonic() - self._last >= self.HEARTBEAT_PERIOD_S:
                    self._send()

    def stop(self) -> None:
        """Stop repeating (before the result is sent)."""
        self._stopped.set()
        self._thread.join(timeout=1.0)
