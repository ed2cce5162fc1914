"""The real executor node with a scripted robot: goals take a set time and never move anything.

Serves ``execute_instruction`` / ``execute_trace`` through :class:`ExecutorNode` (goal admission,
busy rejection, preemption, cancel, heartbeat feedback, results) with a runner that only
reports progress for ``--duration`` seconds. Client tests and benchmarks use it to exercise the
real action servers at high rates without a simulator:

    python -m trace_executor.testing.scripted_executor --duration 0.0
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import rclpy
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor

from trace_executor.errors import ErrorCode
from trace_executor.execution import GoalSpec, Outcome, Phase
from trace_executor.nodes.common import ExecutorNode


class _NoRobot:
    """The scripted runner's robot: nothing to stop."""

    name = 'scripted'

    def stop(self) -> None:
        """Nothing moves."""


class ScriptedRunner:
    """A GoalRunner stand-in: 'executes' for ``duration_s``, honours cancel."""

    def __init__(self, duration_s: float) -> None:
        self.duration_s = duration_s
        self.feedback: Any = lambda *a: None
        self.backend = _NoRobot()
        self.goals = 0

    def run(self, goal: GoalSpec, cancelled: Any, feedback: Any = None) -> Outcome:
        """Report progress for ``duration_s``; CANCELED when asked to stop."""
        if feedback is not None:
            self.feedback = feedback
        self.goals += 1
        t0 = time.monotonic()
        what = goal.instruction or 'trace'
        while True:
            done = 1.0 if self.duration_s <= 0 else (time.monotonic() - t0) / self.duration_s
            if cancelled():
                return Outcome(False, ErrorCode.CANCELED, f'canceled: {what}')
            self.feedback(Phase.EXECUTING, min(done, 1.0), 0, f'executing {what}', None)
            if done >= 1.0:
                return Outcome(True, ErrorCode.NONE, f'done #{self.goals}: {what}')
            time.sleep(0.02)


def main(argv: list[str] | None = None) -> int:
    """Run the scripted executor until interrupted."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--duration', type=float, default=0.0, help='seconds each goal takes')
    args, ros_args = ap.parse_known_args(argv)
    rclpy.init(args=ros_args)
    node = None
    try:
        node = ExecutorNode('scripted_executor', [])
        node.runner = ScriptedRunner(args.duration)  # type: ignore[assignment]
        executor = MultiThreadedExecutor(num_threads=4)
        executor.add_node(node)
        print('scripted_executor ready', flush=True)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == '__main__':
    sys.exit(main())
