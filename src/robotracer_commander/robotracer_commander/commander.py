"""The one client of the RoboTracer actions and services (in the style of nav2's BasicNavigator).

Design notes: docs/design-notes.md (robotracer_commander.commander).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
import enum
import os
import threading
import time
from typing import Any

from action_msgs.msg import GoalStatus
from action_msgs.srv import CancelGoal
from geometry_msgs.msg import Point
import rclpy
from rclpy.executors import (
    ExternalShutdownException,
    MultiThreadedExecutor,
    SingleThreadedExecutor,
)
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions
from rclpy.task import Future

from robotracer_commander.action_client import RaceFreeActionClient
from robotracer_msgs.action import ExecuteInstruction, ExecuteTrace
from robotracer_msgs.msg import SpatialTrace
from robotracer_msgs.srv import GetTrace

#: the executor repeats its last feedback at least this often while a goal runs (s)
HEARTBEAT_PERIOD_S = 0.25
#: default names (relative to the commander node's namespace when not absolute)
EXECUTE_INSTRUCTION = '/robotracer/execute_instruction'
EXECUTE_TRACE = '/robotracer/execute_trace'
GET_TRACE = '/robotracer/get_trace'
#: longest instruction the commander sends: perception's limit (robotracer_ros.prompts; a test
#: checks that they agree)
MAX_INSTRUCTION_CHARS = 1000


_FEEDBACK = ExecuteInstruction.Feedback
_RESULT = ExecuteInstruction.Result

#: phase number → name (a test checks that every generated ``PHASE_*`` constant is here)
PHASE_NAMES: dict[int, str] = {
    _FEEDBACK.PHASE_PERCEIVING: 'perceiving',
    _FEEDBACK.PHASE_PLANNING: 'planning',
    _FEEDBACK.PHASE_EXECUTING: 'executing',
    _FEEDBACK.PHASE_REPLANNING: 'replanning',
    _FEEDBACK.PHASE_WALKING: 'walking',
}

#: error code → name (a test checks that every generated ``ERROR_*`` constant is here, and that
#: ExecuteTrace's codes are the same)
ERROR_NAMES: dict[int, str] = {
    _RESULT.ERROR_NONE: 'NONE',
    _RESULT.ERROR_BUSY: 'BUSY',
    _RESULT.ERROR_BAD_GOAL: 'BAD_GOAL',
    _RESULT.ERROR_PERCEPTION: 'PERCEPTION',
    _RESULT.ERROR_INVALID_TRACE: 'INVALID_TRACE',
    _RESULT.ERROR_UNREACHABLE: 'UNREACHABLE',
    _RESULT.ERROR_WORKSPACE: 'WORKSPACE',
    _RESULT.ERROR_COLLISION: 'COLLISION',
    _RESULT.ERROR_JOINT_LIMIT: 'JOINT_LIMIT',
    _RESULT.ERROR_EXECUTION: 'EXECUTION',
    _RESULT.ERROR_CANCELED: 'CANCELED',
    _RESULT.ERROR_REPLAN_LIMIT: 'REPLAN_LIMIT',
    _RESULT.ERROR_BACKEND_UNAVAILABLE: 'BACKEND_UNAVAILABLE',
    _RESULT.ERROR_PREEMPTED: 'PREEMPTED',
    _RESULT.ERROR_SHUTDOWN: 'SHUTDOWN',
}


class Status(enum.Enum):
    """How a goal (or a trace request) ended, as the commander saw it."""

    SUCCEEDED = 'succeeded'  # the server reported success
    ABORTED = 'aborted'  # the server ended the goal with an error code (see error_code)
    CANCELED = 'canceled'  # canceled on request; the server confirmed (the robot stopped)
    PREEMPTED = 'preempted'  # another goal with preempt=true replaced it (the robot stopped)
    REJECTED = 'rejected'  # the server refused the goal: it is busy with another one
    BAD_GOAL = 'bad_goal'  # refused by the commander before sending (e.g. empty instruction)
    NO_SERVER = 'no_server'  # no server answered within the wait
    SERVER_GONE = 'server_gone'  # the server vanished while the goal ran
    TIMEOUT = 'timeout'  # no result within the timeout; the goal was canceled


@dataclass(frozen=True)
class Feedback:
    """One feedback message, as received."""

    stamp: float  # time.monotonic() at reception
    phase: int  # PHASE_* constant
    progress: float  # 0..1
    replans: int
    message: str
    current_trace: SpatialTrace | None = None

    @property
    def phase_name(self) -> str:
        """The phase's name ('perceiving', 'executing', ...)."""
        return PHASE_NAMES.get(self.phase, str(self.phase))


@dataclass
class GoalOutcome:
    """The end of a goal: what happened and why."""

    status: Status
    message: str
    error_code: int = 0  # the result's ERROR_* code (ERROR_BUSY for a rejection)
    replans: int = 0
    executed_trace: SpatialTrace | None = None
    feedback: list[Feedback] = field(default_factory=list)
    accepted: bool = False
    duration_s: float = 0.0

    @property
    def success(self) -> bool:
        """True only when the server reported success."""
        return self.status is Status.SUCCEEDED

    def summary(self) -> dict[str, Any]:
        """A JSON-friendly summary (no messages objects)."""
        trace = self.executed_trace
        return {
            'success': self.success,
            'status': self.status.value,
            'error_code': int(self.error_code),
            'error': ERROR_NAMES.get(int(self.error_code), str(self.error_code)),
            'message': self.message,
            'replans': int(self.replans),
            'accepted': self.accepted,
            'duration_s': round(self.duration_s, 3),
            'frame_id': trace.header.frame_id if trace is not None else '',
            'trace_points': [[p.x, p.y, p.z] for p in trace.points] if trace is not None else [],
        }


@dataclass
class TraceReply:
    """The answer of GetTrace: the response (when one came) and what the commander saw."""

    status: Status
    message: str
    error_code: int = 0
    response: GetTrace.Response | None = None

    @property
    def success(self) -> bool:
        """True when the perception node returned a trace."""
        return self.status is Status.SUCCEEDED

    @property
    def trace(self) -> SpatialTrace | None:
        """The trace (None unless successful)."""
        return self.response.trace if self.success and self.response is not None else None


def wait_future(future: Future, timeout_s: float | None, poll: Callable[[], bool] | None = None):
    """Wait for ``future`` (spun by another thread) up to ``timeout_s``; None when it did not end.

    Args:
        future: an rclpy future that an executor on another thread completes.
        timeout_s: longest wait in seconds (None: no limit).
        poll: called every 50 ms; returning False stops the wait early.

    Returns:
        The future's result, or None on timeout or when ``poll`` stopped the wait.
    """
    done = threading.Event()
    future.add_done_callback(lambda _f: done.set())
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while not future.done():
        left = 0.05 if deadline is None else min(0.05, deadline - time.monotonic())
        if left <= 0:
            return None
        done.wait(left)
        if poll is not None and not future.done() and not poll():
            return None
    return future.result()


class RunningGoal:
    """A goal sent by the :class:`Commander`: follow it, cancel it, wait for its outcome."""

    def __init__(
        self,
        commander: Commander,
        client: RaceFreeActionClient,
        goal: Any,
        on_feedback: Callable[[Feedback], None] | None,
    ) -> None:
        self._cmd = commander
        self._client = client
        self._on_feedback = on_feedback
        self.feedback: list[Feedback] = []
        self._last_heard = time.monotonic()
        self._t0 = time.monotonic()
        self._handle: Any = None
        self._result_future: Future | None = None
        self._outcome: GoalOutcome | None = None
        self._cancel_requested = False
        self._lock = threading.Lock()
        # the client's own lock: the executor thread holds it while it dispatches responses
        # (and may run the done-callback below inline), so one lock avoids a lock-order deadlock
        self._result_lock = client._registration_lock
        self._goal_future = client.send_goal_async(goal, feedback_callback=self._feedback)
        # ask for the result as soon as the goal is accepted (as every ROS client does), so
        # ``done`` turns true by itself when the goal ends
        self._goal_future.add_done_callback(lambda f: self._request_result(f.result()))

    def _request_result(self, handle: Any) -> None:
        with self._result_lock:
            if handle is None or not handle.accepted or self._result_future is not None:
                return
            self._handle = handle
            self._last_heard = time.monotonic()
            self._result_future = handle.get_result_async()

    # --- following -------------------------------------------------------------------------
    def _feedback(self, msg: Any) -> None:
        f = msg.feedback
        sample = Feedback(
            time.monotonic(),
            int(f.phase),
            float(f.progress),
            int(f.replans),
            str(f.message),
            f.current_trace if f.current_trace.points else None,
        )
        self._last_heard = sample.stamp
        if len(self.feedback) < 100_000:
            self.feedback.append(sample)
        if self._on_feedback is not None:
            self._on_feedback(sample)

    @property
    def done(self) -> bool:
        """True once the goal has ended (result in, rejected, or an outcome decided)."""
        if self._outcome is not None:
            return True
        if self._result_future is not None:
            return self._result_future.done()
        handle = self._goal_future.result() if self._goal_future.done() else None
        return handle is not None and not handle.accepted

    @property
    def last_feedback(self) -> Feedback | None:
        """The latest feedback, if any."""
        return self.feedback[-1] if self.feedback else None

    def _server_alive(self) -> bool:
        if not self._client.server_is_ready():
            return False
        limit = self._cmd.liveness_timeout_s
        return limit <= 0 or time.monotonic() - self._last_heard < limit

    def _gone(self, accepted: bool) -> GoalOutcome:
        name = self._client._action_name
        last = self.last_feedback
        where = f' (last feedback: {last.phase_name}, {last.message!r})' if last else ''
        return self._end(
            Status.SERVER_GONE,
            f'the action server {name} went away while the goal ran{where}: its node stopped '
            'or the network dropped. The robot state is unknown: check the robot.',
            accepted=accepted,
        )

    def _end(self, status: Status, message: str, **kw: Any) -> GoalOutcome:
        out = GoalOutcome(
            status, message, feedback=self.feedback, duration_s=time.monotonic() - self._t0, **kw
        )
        self._outcome = out
        return out

    def _accepted_handle(self, timeout_s: float) -> GoalOutcome | Any:
        """The accepted goal handle, or the outcome that ends the goal before acceptance."""
        if self._handle is not None:
            return self._handle
        handle = wait_future(self._goal_future, timeout_s, self._client.server_is_ready)
        if handle is None:
            if not self._client.server_is_ready():
                return self._end(
                    Status.NO_SERVER,
                    f'no action server {self._client._action_name} (is the executor running, '
                    'same ROS_DOMAIN_ID?)',
                )
            return self._end(
                Status.TIMEOUT, f'the server did not answer the goal request in {timeout_s:g} s'
            )
        if not handle.accepted:
            return self._end(
                Status.REJECTED,
                'the executor rejected the goal: it is busy with another goal (set preempt to '
                'replace the running one, or wait for it to end)',
                error_code=ExecuteInstruction.Result.ERROR_BUSY,
            )
        self._request_result(handle)
        return handle

    def cancel(self, timeout_s: float = 5.0) -> bool:
        """Ask the server to cancel; True when it accepted (the result still follows).

        Args:
            timeout_s: longest wait for the goal to be accepted and for the cancel response.
        """
        with self._lock:
            self._cancel_requested = True
            if self._outcome is not None:
                return False
            handle = self._accepted_handle(timeout_s)
            if isinstance(handle, GoalOutcome):
                return False
        if self.done:
            return False
        response = wait_future(handle.cancel_goal_async(), timeout_s, self._server_alive)
        return response is not None and response.return_code in (
            CancelGoal.Response.ERROR_NONE,
            CancelGoal.Response.ERROR_GOAL_TERMINATED,
        )

    def result(self, timeout_s: float | None = None, cancel_grace_s: float = 10.0) -> GoalOutcome:
        """Wait for the outcome; on ``timeout_s`` the goal is canceled and TIMEOUT returned.

        Args:
            timeout_s: longest wait for the result from now (None: no limit; the liveness check
                still ends the wait when the server goes away).
            cancel_grace_s: after a timeout, how long to wait for the canceled goal's result.

        Returns:
            The outcome (also kept: a second call returns the same one).
        """
        if self._outcome is not None:
            return self._outcome
        t_start = time.monotonic()
        with self._lock:
            handle = self._accepted_handle(self._cmd.goal_response_timeout_s)
        if isinstance(handle, GoalOutcome):
            return handle
        assert self._result_future is not None
        left = None if timeout_s is None else max(0.0, timeout_s - (time.monotonic() - t_start))
        response = wait_future(self._result_future, left, self._server_alive)
        if response is None and not self._server_alive():
            return self._gone(accepted=True)
        if response is None:
            canceled = self.cancel(timeout_s=5.0)
            response = wait_future(self._result_future, cancel_grace_s, self._server_alive)
            stopped = (
                'the goal was canceled and the robot stopped'
                if response is not None and response.status == GoalStatus.STATUS_CANCELED
                else (
                    'the cancel was accepted but no result followed'
                    if canceled
                    else 'the cancel was not confirmed'
                )
            )
            out = self._from_response(response) if response is not None else None
            return self._end(
                Status.TIMEOUT,
                f'no result within {timeout_s:g} s: {stopped}',
                accepted=True,
                error_code=out.error_code if out else ExecuteInstruction.Result.ERROR_CANCELED,
                replans=out.replans if out else 0,
                executed_trace=out.executed_trace if out else None,
            )
        out = self._from_response(response)
        self._outcome = out
        return out

    def _from_response(self, response: Any) -> GoalOutcome:
        res = response.result
        status = {
            GoalStatus.STATUS_SUCCEEDED: Status.SUCCEEDED,
            GoalStatus.STATUS_CANCELED: Status.CANCELED,
        }.get(response.status, Status.ABORTED)
        message = res.error_msg
        if status is Status.ABORTED and response.status != GoalStatus.STATUS_ABORTED:
            message = f'goal ended with status {response.status}: {res.error_msg}'
        elif res.error_code == ExecuteInstruction.Result.ERROR_PREEMPTED:
            status = Status.PREEMPTED
        return GoalOutcome(
            status,
            message,
            error_code=int(res.error_code),
            replans=int(res.replans),
            executed_trace=res.executed_trace,
            feedback=self.feedback,
            accepted=True,
            duration_s=time.monotonic() - self._t0,
        )


class Commander:
    """Send instructions and traces to the executor, ask perception for traces.

    Args:
        node: a node to create the clients on. None: the commander creates its own node (and
            initialises rclpy without signal handlers when nobody has, so Ctrl-C reaches the
            caller as KeyboardInterrupt and the goal can still be canceled).
        spin: spin the node on a background thread (False when the caller spins it already).
        executor: 'multi' (MultiThreadedExecutor) or 'single' (SingleThreadedExecutor).
        execute_instruction, execute_trace, get_trace: action and service names.
        liveness_timeout_s: a running goal without feedback for this long ends SERVER_GONE
            (0 disables; the executor sends feedback every ``HEARTBEAT_PERIOD_S``).
        goal_response_timeout_s: longest wait for the server to accept or reject a goal.
    """

    def __init__(
        self,
        node: Node | None = None,
        *,
        spin: bool = True,
        executor: str = 'multi',
        execute_instruction: str = EXECUTE_INSTRUCTION,
        execute_trace: str = EXECUTE_TRACE,
        get_trace: str = GET_TRACE,
        liveness_timeout_s: float = 1.5,
        goal_response_timeout_s: float = 15.0,
    ) -> None:
        self._own_context = False
        if node is None:
            if not rclpy.ok():
                rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
                self._own_context = True
            node = rclpy.create_node(f'robotracer_commander_{os.getpid()}')
            self._own_node = True
        else:
            self._own_node = False
        self.node = node
        self.liveness_timeout_s = liveness_timeout_s
        self.goal_response_timeout_s = goal_response_timeout_s
        self.instruction_client = RaceFreeActionClient(
            node, ExecuteInstruction, execute_instruction
        )
        self.trace_client = RaceFreeActionClient(node, ExecuteTrace, execute_trace)
        self.get_trace_client = node.create_client(GetTrace, get_trace)
        self._executor = None
        self._spin_thread: threading.Thread | None = None
        if spin:
            self._executor = (
                MultiThreadedExecutor(num_threads=2)
                if executor == 'multi'
                else SingleThreadedExecutor()
            )
            self._executor.add_node(node)
            self._spin_thread = threading.Thread(
                target=self._spin, name='robotracer_commander_spin', daemon=True
            )
            self._spin_thread.start()

    def _spin(self) -> None:
        try:
            self._executor.spin()
        except ExternalShutdownException:
            pass

    # --- servers ---------------------------------------------------------------------------
    def wait_for_servers(
        self, timeout_s: float = 20.0, *, actions: bool = True, get_trace: bool = False
    ) -> list[str]:
        """Wait until the servers are there; returns the names still missing (empty: all up)."""
        deadline = time.monotonic() + timeout_s
        wanted: list[tuple[str, Callable[[], bool]]] = []
        if actions:
            wanted += [
                (self.instruction_client._action_name, self.instruction_client.server_is_ready),
                (self.trace_client._action_name, self.trace_client.server_is_ready),
            ]
        if get_trace:
            wanted.append((self.get_trace_client.srv_name, self.get_trace_client.service_is_ready))
        while True:
            missing = [name for name, ready in wanted if not ready()]
            if not missing or time.monotonic() > deadline:
                return missing
            time.sleep(0.05)

    # --- goals -----------------------------------------------------------------------------
    def send_instruction(
        self,
        instruction: str,
        *,
        dry_run: bool = False,
        speed_scale: float = 0.0,
        disable_replanning: bool = False,
        mode: str = '',
        preempt: bool = False,
        on_feedback: Callable[[Feedback], None] | None = None,
    ) -> RunningGoal | GoalOutcome:
        """Send ExecuteInstruction; returns the running goal, or the outcome of a bad goal.

        Replanning is on unless ``disable_replanning``. See the action file for the fields.
        """
        text = instruction if isinstance(instruction, str) else ''
        if not text.strip():
            return GoalOutcome(
                Status.BAD_GOAL,
                'the instruction is empty',
                error_code=ExecuteInstruction.Result.ERROR_BAD_GOAL,
            )
        if len(text) > MAX_INSTRUCTION_CHARS:
            return GoalOutcome(
                Status.BAD_GOAL,
                f'the instruction has {len(text)} characters (at most {MAX_INSTRUCTION_CHARS})',
                error_code=ExecuteInstruction.Result.ERROR_BAD_GOAL,
            )
        goal = ExecuteInstruction.Goal(
            instruction=text,
            dry_run=dry_run,
            speed_scale=float(speed_scale),
            disable_replanning=disable_replanning,
            mode=mode,
            preempt=preempt,
        )
        return self.send_goal(self.instruction_client, goal, on_feedback)

    def send_trace(
        self,
        trace: SpatialTrace | Sequence[Sequence[float]],
        *,
        frame_id: str = '',
        dry_run: bool = False,
        speed_scale: float = 0.0,
        mode: str = '',
        preempt: bool = False,
        on_feedback: Callable[[Feedback], None] | None = None,
    ) -> RunningGoal | GoalOutcome:
        """Send ExecuteTrace with a SpatialTrace or a list of (x, y, z) points in ``frame_id``."""
        if not isinstance(trace, SpatialTrace):
            msg = SpatialTrace()
            msg.header.frame_id = frame_id
            msg.points = [Point(x=float(x), y=float(y), z=float(z)) for x, y, z in trace]
            trace = msg
        goal = ExecuteTrace.Goal(
            trace=trace,
            dry_run=dry_run,
            speed_scale=float(speed_scale),
            mode=mode,
            preempt=preempt,
        )
        return self.send_goal(self.trace_client, goal, on_feedback)

    def send_goal(
        self,
        client: RaceFreeActionClient,
        goal: Any,
        on_feedback: Callable[[Feedback], None] | None = None,
    ) -> RunningGoal | GoalOutcome:
        """Send a prepared goal message on one of the commander's clients."""
        if not client.server_is_ready() and not client.wait_for_server(timeout_sec=0.0):
            return GoalOutcome(
                Status.NO_SERVER,
                f'no action server {client._action_name} (is the executor running, same '
                'ROS_DOMAIN_ID?)',
            )
        return RunningGoal(self, client, goal, on_feedback)

    def execute_instruction(
        self, instruction: str, *, timeout_s: float | None = None, **kw: Any
    ) -> GoalOutcome:
        """Send an instruction and wait for its outcome (keywords as :meth:`send_instruction`)."""
        return _outcome(self.send_instruction(instruction, **kw), timeout_s)

    def execute_trace(
        self,
        trace: SpatialTrace | Sequence[Sequence[float]],
        *,
        timeout_s: float | None = None,
        **kw: Any,
    ) -> GoalOutcome:
        """Send a trace and wait for its outcome (keywords as :meth:`send_trace`)."""
        return _outcome(self.send_trace(trace, **kw), timeout_s)

    # --- perception ------------------------------------------------------------------------
    def get_trace(
        self,
        instruction: str,
        *,
        trace_2d: bool = False,
        target_frame: str = '',
        depth_source: int = GetTrace.Request.DEPTH_DEFAULT,
        timeout_s: float = 120.0,
        wait_s: float = 10.0,
    ) -> TraceReply:
        """Ask the perception node for a trace (GetTrace)."""
        if not instruction.strip():
            return TraceReply(
                Status.BAD_GOAL, 'the instruction is empty', GetTrace.Response.ERROR_BAD_REQUEST
            )
        client = self.get_trace_client
        if not client.wait_for_service(timeout_sec=wait_s):
            return TraceReply(
                Status.NO_SERVER,
                f'service {client.srv_name} not available after {wait_s:g} s: is the perception '
                'node running (same ROS_DOMAIN_ID)?',
            )
        req = GetTrace.Request(
            instruction=instruction,
            trace_2d=trace_2d,
            target_frame=target_frame,
            depth_source=depth_source,
        )
        response = wait_future(client.call_async(req), timeout_s, client.service_is_ready)
        if response is None:
            if not client.service_is_ready():
                return TraceReply(
                    Status.SERVER_GONE, f'service {client.srv_name} went away during the call'
                )
            return TraceReply(
                Status.TIMEOUT, f'no response from {client.srv_name} within {timeout_s:g} s'
            )
        status = Status.SUCCEEDED if response.success else Status.ABORTED
        return TraceReply(status, response.error_msg, int(response.error_code), response)

    # --- lifetime --------------------------------------------------------------------------
    def close(self) -> None:
        """Stop spinning and destroy what the commander created (safe to call twice)."""
        if self._executor is not None:
            self._executor.shutdown(timeout_sec=1.0)
            self._executor = None
        if self._spin_thread is not None:
            self._spin_thread.join(timeout=2.0)
            self._spin_thread = None
        for c in (self.instruction_client, self.trace_client):
            try:
                c.destroy()
            except Exception:  # noqa: BLE001 - already destroyed with the node
                pass
        if self._own_node:
            self.node.destroy_node()
            self._own_node = False
        if self._own_context:
            rclpy.try_shutdown()
            self._own_context = False

    def __enter__(self) -> Commander:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _outcome(goal: RunningGoal | GoalOutcome, timeout_s: float | None) -> GoalOutcome:
    return goal if isinstance(goal, GoalOutcome) else goal.result(timeout_s)
