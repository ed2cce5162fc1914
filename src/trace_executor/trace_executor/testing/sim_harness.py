"""Drive a simulated bringup from a test or a benchmark, as a user would, through the Commander.

:class:`SimClient` is what both robots share: a client node spun on its own thread, the
:class:`~robotracer_commander.Commander` for goals, and the simulator's ground truth
(``/sim/get_object_poses``, ``/sim/set_object_pose``). :class:`ChildProcess` runs one node
of the bringup and keeps its output. The robot-specific harnesses (``ur5_sim``, ``g1_sim``)
start their processes and add what only their robot has.
"""

from __future__ import annotations

from collections.abc import Callable
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Any

from geometry_msgs.msg import Pose
import numpy as np
import rclpy
from rclpy.executors import MultiThreadedExecutor

from robotracer_commander import Commander, Feedback, GoalOutcome, RunningGoal
from robotracer_msgs.action import ExecuteInstruction, ExecuteTrace
from robotracer_msgs.srv import GetObjectPoses, SetObjectPose
from robotracer_ros.bringup import dies_with_parent

__all__ = ['ChildProcess', 'ExecuteInstruction', 'ExecuteTrace', 'SimClient', 'free_port']


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


class ChildProcess:
    """One process of the bringup (its own session), with its output kept in memory.

    Args:
        name: for messages and log files.
        argv: the command (``python`` as first word means this interpreter).
        ready: a line containing this text means the process is up.
    """

    def __init__(self, name: str, argv: list[str], ready: str) -> None:
        self.name = name
        self.lines: list[str] = []
        self._ready_text = ready
        self.ready = threading.Event()
        if argv and argv[0] == 'python':
            argv = [sys.executable, *argv[1:]]
        self.proc = subprocess.Popen(
            dies_with_parent(argv),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip())
            if self._ready_text in line:
                self.ready.set()

    def wait(self, timeout: float) -> None:
        """Wait for the ready line; AssertionError with the output's tail if it never comes."""
        deadline = time.monotonic() + timeout
        while not self.ready.wait(0.2):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f'{self.name} did not start:\n' + '\n'.join(self.lines[-40:]))

    def text(self) -> str:
        """Everything the process printed so far."""
        return '\n'.join(self.lines)

    def signal(self, sig: int) -> None:
        """Send ``sig`` to the process group (if still running)."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)

    def stop(self, timeout: float = 15.0) -> None:
        """SIGINT, then SIGKILL after ``timeout``."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)


class SimClient:
    """A client node on a running simulated bringup: goals (Commander) and ground truth."""

    node_name = 'sim_client'

    def _connect(self, wait_s: float = 30.0) -> None:
        """Create the node, spin it, and wait for the executor's actions and the simulator."""
        rclpy.init()
        self.node = rclpy.create_node(self.node_name)
        self.executor = MultiThreadedExecutor(num_threads=2)
        self.executor.add_node(self.node)
        self._spin = threading.Thread(target=self.executor.spin, daemon=True)
        self._spin.start()
        self.commander = Commander(self.node, spin=False)
        self.instruction = self.commander.instruction_client
        self.trace_action = self.commander.trace_client
        self.get_poses = self.node.create_client(GetObjectPoses, '/sim/get_object_poses')
        self.set_pose = self.node.create_client(SetObjectPose, '/sim/set_object_pose')
        self.goal: RunningGoal | None = None
        missing = self.commander.wait_for_servers(wait_s)
        assert not missing, f'no action server: {missing}'
        assert self.get_poses.wait_for_service(timeout_sec=wait_s), 'no ground truth service'

    # --- ground truth ---------------------------------------------------------------------
    def _wait(self, fut, timeout: float = 30.0):
        deadline = time.monotonic() + timeout
        while not fut.done():
            assert time.monotonic() < deadline, 'no answer in time'
            time.sleep(0.01)
        return fut.result()

    def poses(self) -> dict[str, tuple[np.ndarray, bool]]:
        """Ground-truth object positions and whether the robot holds them."""
        res = self._wait(self.get_poses.call_async(GetObjectPoses.Request()))
        return {
            n: (np.array([p.position.x, p.position.y, p.position.z]), h)
            for n, p, h in zip(res.names, res.poses, res.held, strict=True)
        }

    def position(self, name: str) -> np.ndarray:
        """Ground-truth position of one object."""
        return self.poses()[name][0]

    def move(self, name: str, xyz) -> SetObjectPose.Response:
        """Teleport an object (refused while held)."""
        pose = Pose()
        pose.position.x, pose.position.y, pose.position.z = (float(v) for v in xyz)
        pose.orientation.w = 1.0
        return self._wait(self.set_pose.call_async(SetObjectPose.Request(name=name, pose=pose)))

    # --- goals ----------------------------------------------------------------------------
    def run(
        self,
        goal: Any,
        client: Any = None,
        on_feedback: Callable[[Feedback], None] | None = None,
        cancel_after_s: float | None = None,
        timeout: float = 180.0,
    ) -> tuple[bool, GoalOutcome | None, list[tuple[float, Feedback]]]:
        """Send a goal message; returns (accepted, outcome or None, [(t, feedback)])."""
        feedback: list[tuple[float, Feedback]] = []

        def fb(sample: Feedback) -> None:
            feedback.append((sample.stamp, sample))
            if on_feedback:
                on_feedback(sample)

        sent = self.commander.send_goal(client or self.instruction, goal, fb)
        if isinstance(sent, GoalOutcome):
            return False, None, feedback
        self.goal = sent
        if cancel_after_s is not None:
            deadline = time.monotonic() + cancel_after_s
            while time.monotonic() < deadline and not sent.done:
                time.sleep(0.01)
            sent.cancel()
        outcome = sent.result(timeout)
        return outcome.accepted, (outcome if outcome.accepted else None), feedback

    def cancel(self) -> bool:
        """Cancel the goal sent last; True when the server accepted the cancel."""
        return self.goal is not None and self.goal.cancel()

    @staticmethod
    def instruct(text: str, speed: float = 0.7, replanning: bool = True, **kw: Any):
        """An ExecuteInstruction goal (replanning on unless told)."""
        return ExecuteInstruction.Goal(
            instruction=text, speed_scale=speed, disable_replanning=not replanning, **kw
        )

    def close_client(self) -> None:
        """Stop the client node (the processes are the subclass's)."""
        if rclpy.ok():
            self.executor.shutdown()
            self.node.destroy_node()
            rclpy.shutdown()
