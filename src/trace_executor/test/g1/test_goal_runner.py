"""GoalRunner with the G1 planner: walks report PHASE_WALKING, hands get their segment, a walk
that says ``look_again`` makes the runner perceive again (not a replan).

ROS-free: the real :class:`G1Planner` and :class:`GoalRunner`; the robot is an in-process
backend that "executes" segments by moving its state to their end (the DDS backend is tested in
backends/test_unitree.py and end to end in e2e/test_g1_sim.py).
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip('pink')

from trace_executor.errors import ErrorCode  # noqa: E402
from trace_executor.execution import (  # noqa: E402
    GoalRunner,
    GoalSpec,
    MotionResult,
    MotionStatus,
    Phase,
    TraceInput,
)
from trace_executor.g1.kinematics import standing_upper_body  # noqa: E402
from trace_executor.g1.plan_types import pack_state  # noqa: E402
from trace_executor.g1.planner import G1Planner  # noqa: E402

CUP = np.array([0.45, 0.12, 0.765])
PLATE = np.array([1.42, 0.62, 0.765])


def trace(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    top = max(a[2], b[2]) + 0.12
    return np.array([a, [*a[:2], top], [*(0.5 * (a[:2] + b[:2])), top], [*b[:2], top], b])


class SimpleG1:
    """Follows plan segments instantly: walks set the base, motions set the joints."""

    name = 'in-process'

    def __init__(self) -> None:
        self.state = pack_state((0.0, 0.0, 0.8015, 0.0), standing_upper_body())
        self.calls: list[tuple] = []

    def joint_positions(self) -> np.ndarray:
        return self.state.copy()

    def execute(self, segment, interrupt, progress) -> MotionResult:
        if segment.kind.value == 'walk':
            x, y, yaw = segment.goal
            self.state[[0, 1, 3]] = [x, y, yaw]
        elif segment.kind.value == 'motion':
            self.state[4:] = segment.positions_rad[-1]
        progress(1.0)
        self.calls.append((segment.kind.value,))
        return MotionResult(MotionStatus.DONE)

    def gripper(self, close: bool, segment=None) -> tuple[bool, str]:
        self.calls.append(('gripper', close, segment.side if segment is not None else None))
        return True, 'ok'


def test_walks_look_again_report_walking_and_hands_get_their_side():
    backend = SimpleG1()
    looks: list[np.ndarray] = []

    def perceive(_instruction: str) -> TraceInput:
        looks.append(backend.state[:2].copy())
        return TraceInput(trace(CUP, PLATE), 'odom')

    phases: list[Phase] = []
    runner = GoalRunner(
        G1Planner(),
        backend,
        perceive=perceive,
        feedback=lambda phase, *a: phases.append(phase),
    )
    goal = GoalSpec('put the red cup on the plate', None, False, 1.0, True, 'pick_place')
    out = runner.run(goal, lambda: False)
    assert out.success, out.message
    assert out.replans == 0, 'looking again after a walk is not a replan'
    assert len(looks) == 3, 'perceived at the start and after each of the two walks'
    assert np.linalg.norm(looks[1] - looks[0]) > 0.05 and np.linalg.norm(looks[2]) > 1.0
    assert Phase.WALKING in phases and Phase.EXECUTING in phases
    grips = [c for c in backend.calls if c[0] == 'gripper']
    assert grips == [('gripper', True, 'left'), ('gripper', False, 'left')]
    assert backend.calls[-1] == ('arm_release',)


def test_a_trace_goal_walks_and_plans_again_from_the_same_trace():
    backend = SimpleG1()
    runner = GoalRunner(G1Planner(), backend)
    goal = GoalSpec('', TraceInput(trace(CUP, PLATE), 'odom'), False, 1.0, False, 'pick_place')
    out = runner.run(goal, lambda: False)
    assert out.success and out.code == ErrorCode.NONE, out.message
    walks = [c for c in backend.calls if c[0] == 'walk']
    assert len(walks) == 2
    assert np.linalg.norm(backend.state[:2] - PLATE[:2]) < 0.5


class PlacedObjectWatcher:
    """Reports what a camera sees once the object is put down: it sits at the destination
    (a change there, compared with the frame before it arrived) and is gone from the start."""

    def __init__(self) -> None:
        self.armed = False
        self.held = False
        self.released = False
        self.arms: list[bool] = []

    def arm(self, plan, holding: bool) -> None:
        self.released = self.released or (self.held and not holding)
        self.held = holding
        self.armed = True
        self.arms.append(holding)

    def poll(self):
        from trace_executor.execution import SceneEvent

        if self.armed and self.released:
            return SceneEvent('destination: 26% of 541 pixels changed (something appeared)')
        return None

    def disarm(self) -> None:
        self.armed = False


class WatchedG1(SimpleG1):
    """Polls the scene once per motion, as a backend does while it streams."""

    def execute(self, segment, interrupt, progress) -> MotionResult:
        if segment.kind.value == 'motion' and interrupt() is not None:
            self.calls.append(('interrupted',))
            return MotionResult(MotionStatus.STOPPED, 'stopped')
        return super().execute(segment, interrupt, progress)


def test_after_the_release_the_placed_object_is_no_reason_to_replan():
    """The object just put on the plate reads as a change at the destination: a watcher still
    armed then would replan and pick it up again (seen on the G1 in the simulator)."""
    backend = WatchedG1()
    watcher = PlacedObjectWatcher()
    runner = GoalRunner(
        G1Planner(),
        backend,
        perceive=lambda _i: TraceInput(trace(CUP, PLATE), 'odom'),
        watcher=watcher,
    )
    goal = GoalSpec('put the red cup on the plate', None, False, 1.0, True, 'pick_place')
    out = runner.run(goal, lambda: False)
    assert out.success and out.replans == 0, out.message
    assert ('interrupted',) not in backend.calls
    grips = [c for c in backend.calls if c[0] == 'gripper']
    assert grips == [('gripper', True, 'left'), ('gripper', False, 'left')], 'picked once'
    assert not watcher.armed, 'not watching after the release'
    assert True in watcher.arms, 'watched while carrying'
