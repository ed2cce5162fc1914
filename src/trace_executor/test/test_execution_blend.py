"""Replanning without stopping: on a scene change the arm keeps moving, the new plan is entered
from its moving state, and it brakes only when it must (the change is in its way, the new plan
is late, no blend is feasible) — with the real GoalRunner and UR5 planner and an in-process arm
that follows trajectories in real time like a joint trajectory controller."""

from __future__ import annotations

import time

import numpy as np
import pytest

from trace_executor.errors import ErrorCode
from trace_executor.execution import (
    GoalRunner,
    GoalSpec,
    MotionResult,
    MotionStatus,
    SceneEvent,
    TraceInput,
)
from trace_executor.ur5 import UR5_HOME, Ur5Planner

TRACE = np.array([[0.45, -0.12, 0.15], [0.45, 0.0, 0.15], [0.45, 0.12, 0.15]])
MOVED = TRACE + [0.0, 0.06, 0.0]  # where the model sees it after the change


class ControllerArm:
    """Follows timed segments in wall-clock time; a new one replaces the running one (as the
    JTC does); a stop decelerates at 8 rad/s². Records what a test needs to judge the motion."""

    name = 'fake'

    def __init__(self, q0: np.ndarray, report_velocity: bool = True) -> None:
        self._rest = np.asarray(q0, dtype=float).copy()
        self._running: tuple | None = None
        self.stops = 0
        self.handovers = 0
        self.segments: list = []
        #: (commanded q, v) when each new segment arrived
        self.state_at_start: list[tuple[np.ndarray, np.ndarray]] = []
        if not report_velocity:  # a backend that cannot hand over (no joint_state)
            self.joint_state = None  # type: ignore[assignment]

    def _state(self) -> tuple[np.ndarray, np.ndarray]:
        if self._running is None:
            return self._rest.copy(), np.zeros(6)
        seg, t0 = self._running
        t = time.monotonic() - t0
        times = seg.times_s
        if t >= times[-1]:
            self._rest = np.asarray(seg.positions_rad[-1], dtype=float).copy()
            self._running = None
            return self._rest.copy(), np.zeros(6)
        k = min(int(np.searchsorted(times, t, side='right')) - 1, len(times) - 2)
        f = (t - times[k]) / (times[k + 1] - times[k])
        q = seg.positions_rad[k] + f * (seg.positions_rad[k + 1] - seg.positions_rad[k])
        v = seg.velocities_rad_s[k] + f * (seg.velocities_rad_s[k + 1] - seg.velocities_rad_s[k])
        return q, v

    def joint_positions(self) -> np.ndarray:
        return self._state()[0]

    def joint_state(self) -> tuple[np.ndarray, np.ndarray]:
        return self._state()

    def execute(self, segment, interrupt, progress) -> MotionResult:
        self.state_at_start.append(self._state())
        self.segments.append(segment)
        self._running = (segment, time.monotonic())
        while True:
            why = interrupt()
            if why and why.keep_moving and self.joint_state is not None:
                self.handovers += 1
                return MotionResult(MotionStatus.HANDED_OVER, str(why), str(why))
            if why:
                self.stop()
                return MotionResult(MotionStatus.STOPPED, str(why), str(why))
            self._state()
            if self._running is None or self._running[0] is not segment:
                return MotionResult(MotionStatus.DONE)
            time.sleep(0.002)

    def gripper(self, close: bool, segment=None) -> tuple[bool, str]:
        return True, 'ok'

    def stop(self) -> None:
        q, v = self._state()
        t_stop = max(float(np.abs(v).max()) / 8.0, 0.01)
        time.sleep(t_stop)
        self._running = None
        self._rest = q + 0.5 * v * t_stop
        self.stops += 1


class ChangeAfter:
    """Reports one scene change ``after_s`` into the first motion (with optional obstacles)."""

    def __init__(self, after_s: float, obstacles: np.ndarray | None = None) -> None:
        self.after_s = after_s
        self.obstacles = np.zeros((0, 3)) if obstacles is None else obstacles
        self.armed_at: float | None = None
        self.fired_at: float | None = None

    def arm(self, plan, holding) -> None:
        if self.armed_at is None:
            self.armed_at = time.monotonic()

    def poll(self) -> SceneEvent | None:
        if self.fired_at is None and self.armed_at is not None:
            if time.monotonic() - self.armed_at > self.after_s:
                self.fired_at = time.monotonic()
                return SceneEvent('the object moved', self.obstacles)
        return None

    def disarm(self) -> None:
        pass


@pytest.fixture(scope='module')
def planner() -> Ur5Planner:
    return Ur5Planner()


def _perceive(delay_s: float = 0.0):
    calls = []

    def perceive(_instruction: str) -> TraceInput:
        calls.append(time.monotonic())
        if len(calls) > 1:
            time.sleep(delay_s)
            return TraceInput(MOVED.copy(), 'base_link')
        return TraceInput(TRACE.copy(), 'base_link')

    return perceive


def _run(planner: Ur5Planner, arm: ControllerArm, watcher: ChangeAfter, **kw):
    cancel = kw.pop('cancel', lambda: False)
    perceive = _perceive(kw.pop('delay_s', 0.0))
    runner = GoalRunner(planner, arm, perceive=perceive, watcher=watcher, max_replans=1, **kw)
    return runner.run(GoalSpec('follow the line', None, False, 1.0, True, 'follow'), cancel)


def _tcp(planner: Ur5Planner, q: np.ndarray) -> np.ndarray:
    return planner.kinematics.forward_tcp(q)[:3, 3]


def test_a_scene_change_is_replanned_without_stopping(planner: Ur5Planner) -> None:
    arm = ControllerArm(np.array(UR5_HOME))
    watcher = ChangeAfter(0.35)
    out = _run(planner, arm, watcher)
    assert out.success and out.replans == 1, out.message
    assert arm.handovers == 1 and arm.stops == 0  # never braked
    # the new motion took over while the arm was moving, without a jump in position/velocity
    q_then, v_then = arm.state_at_start[1]
    blended = arm.segments[1]
    assert np.abs(v_then).max() > 0.1
    assert np.abs(blended.positions_rad[0] - q_then).max() < 0.05
    assert np.abs(blended.velocities_rad_s[0] - v_then).max() < 0.3
    # within the joint limits on every sample
    vmax, amax = planner.velocity_limit_rad_s, planner.acceleration_limit_rad_s2
    assert np.all(np.abs(blended.velocities_rad_s) <= vmax * (1 + 1e-6))
    assert np.all(np.abs(blended.accelerations_rad_s2) <= amax * (1 + 1e-6))
    assert np.all(blended.positions_rad >= planner.lower_rad)
    assert np.all(blended.positions_rad <= planner.upper_rad)
    assert np.all(blended.velocities_rad_s[-1] == 0)
    # and the tool ends where the new trace says, not the old one
    assert np.linalg.norm(_tcp(planner, arm.joint_positions()) - MOVED[-1]) < 0.01


def test_a_change_in_the_way_of_the_current_motion_brakes(planner: Ur5Planner) -> None:
    arm = ControllerArm(np.array(UR5_HOME))
    # something appeared on what remains of the current path
    watcher = ChangeAfter(0.35, obstacles=np.array([TRACE[-1] + [0.0, 0.0, -0.02]]))
    out = _run(planner, arm, watcher)
    assert arm.handovers == 0 and arm.stops == 1
    # the fresh trace passes next to it as well: refused rather than driven into it
    assert not out.success and out.code == ErrorCode.COLLISION, out.message


def test_a_late_plan_brakes_at_the_deadline_then_goes_on(planner: Ur5Planner) -> None:
    arm = ControllerArm(np.array(UR5_HOME))
    watcher = ChangeAfter(0.35)
    out = _run(planner, arm, watcher, delay_s=0.4, blend_deadline_s=0.1)
    assert out.success and out.replans == 1, out.message
    assert arm.handovers == 1 and arm.stops == 1  # handed over, then braked at the deadline
    _, v_then = arm.state_at_start[1]
    assert np.abs(v_then).max() < 0.05  # the new plan started from rest
    assert np.linalg.norm(_tcp(planner, arm.joint_positions()) - MOVED[-1]) < 0.01


def test_cancel_while_the_new_plan_is_made_stops_the_arm(planner: Ur5Planner) -> None:
    arm = ControllerArm(np.array(UR5_HOME))
    watcher = ChangeAfter(0.35)
    out = _run(planner, arm, watcher, cancel=lambda: watcher.fired_at is not None)
    assert not out.success and out.code == ErrorCode.CANCELED
    assert arm.stops == 1 and len(arm.segments) == 1
    assert np.abs(arm.joint_state()[1]).max() == 0.0


def test_a_backend_without_velocities_stops_as_before(planner: Ur5Planner) -> None:
    arm = ControllerArm(np.array(UR5_HOME), report_velocity=False)
    watcher = ChangeAfter(0.35)
    out = _run(planner, arm, watcher)
    assert out.success and out.replans == 1, out.message
    assert arm.handovers == 0 and arm.stops == 1
    assert np.linalg.norm(_tcp(planner, arm.joint_positions()) - MOVED[-1]) < 0.01


def test_replanning_can_be_switched_back_to_stop_first(planner: Ur5Planner) -> None:
    arm = ControllerArm(np.array(UR5_HOME))
    out = _run(planner, arm, ChangeAfter(0.35), blend=False)
    assert out.success and arm.handovers == 0 and arm.stops == 1
