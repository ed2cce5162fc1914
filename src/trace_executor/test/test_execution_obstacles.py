"""What appeared in the scene blocks a new plan only along the way, not at its two ends."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from trace_executor.execution import GoalRunner, TraceInput

PATH = np.array([[0.40, -0.20, 0.05 + 0.1 * np.sin(np.pi * t)] for t in np.linspace(0, 1, 21)])
PATH[:, 1] = np.linspace(-0.20, 0.20, 21)
PLAN = SimpleNamespace(mode='pick_place', tool_path=SimpleNamespace(positions=PATH))
TRACE = TraceInput(PATH[[0, 10, 20]].copy(), 'base_link')


def blocked(points, holding: bool = False) -> str:
    runner = GoalRunner(planner=None, backend=None)
    pts = np.atleast_2d(np.asarray(points, dtype=float))
    return runner._blocked(PLAN, pts, TRACE, holding)


def test_something_in_the_way_blocks_and_is_named():
    why = blocked([PATH[10] + [0.01, 0.0, 0.0]])
    assert 'obstacle appeared at (0.41, 0.00, 0.15)' in why and 'clearance 6 cm' in why


def test_the_object_itself_and_the_destination_do_not_block():
    assert blocked([PATH[0] + [0.03, 0.0, 0.0]]) == ''  # the object to pick, moved there
    assert blocked([PATH[-1] + [0.0, 0.02, 0.03]]) == ''  # the destination / held object
    assert blocked([PATH[10] + [0.0, 0.0, 0.3]]) == ''  # far above the path


def test_while_holding_the_hand_and_the_destination_do_not_block():
    # carrying: the trace starts at the hand (an unmasked hand must not stop the goal)
    assert blocked([PATH[0] + [0.0, 0.0, 0.03]], holding=True) == ''
    assert 'obstacle appeared' in blocked([PATH[10] + [0.0, 0.0, -0.03]], holding=True)


def test_trace_in_another_frame_is_compared_in_the_base_frame():
    tf = np.eye(4)
    tf[:3, 3] = [1.0, 0.0, 0.0]
    trace = TraceInput(TRACE.points - [1.0, 0.0, 0.0], 'camera', tf)
    runner = GoalRunner(planner=None, backend=None)
    assert runner._blocked(PLAN, np.atleast_2d(PATH[0]), trace) == ''


def test_a_push_counts_what_appeared_at_its_end():
    push = SimpleNamespace(mode='push', tool_path=PLAN.tool_path)
    runner = GoalRunner(planner=None, backend=None)
    assert 'obstacle appeared' in runner._blocked(push, np.atleast_2d(PATH[-1]), TRACE)
