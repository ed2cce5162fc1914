"""Harness for the UR5 end-to-end tests: the real bringup in child processes, a test client.

Starts ``robotracer launch ur5 oracle_port:=<free port>`` (simulator + oracle model server +
perception node + executor, exactly what a user runs) and offers the calls a user makes:
execute an instruction or a trace, move objects, read ground truth and joint states.
"""

from __future__ import annotations

from collections.abc import Callable
import os
import shutil
import signal
import socket
import subprocess
import threading
import time

from geometry_msgs.msg import Point, Pose
import numpy as np
import rclpy
from rclpy.action import ActionClient
from rclpy.executors import MultiThreadedExecutor
from sensor_msgs.msg import JointState
from std_srvs.srv import SetBool

from robotracer_msgs.action import ExecuteInstruction, ExecuteTrace
from robotracer_msgs.msg import SpatialTrace
from robotracer_msgs.srv import GetObjectPoses, SetObjectPose

INITIAL = {  # config/scenes/ur5_tabletop.yaml: object centres resting on the table
    'red_cube': (0.45, -0.20, 0.0225),
    'blue_cube': (0.60, 0.05, 0.0225),
    'green_cube': (0.35, 0.10, 0.0225),
    'cup': (0.62, -0.30, 0.045),
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


class Ur5Sim:
    """The running bringup plus a ROS client node (call :meth:`close` at the end)."""

    def __init__(self, extra_args: tuple[str, ...] = ()) -> None:
        exe = shutil.which('robotracer')
        assert exe, 'source setup.bash first'
        self.port = free_port()
        self.log: list[str] = []
        self.proc = subprocess.Popen(
            [exe, 'launch', 'ur5', f'oracle_port:={self.port}', *extra_args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self._ready = threading.Event()
        threading.Thread(target=self._pump, daemon=True).start()
        if not self._ready.wait(90):
            self.close()
            raise AssertionError('bringup not ready in 90 s:\n' + '\n'.join(self.log[-40:]))
        rclpy.init()
        self.node = rclpy.create_node('ur5_e2e_client')
        self.executor = MultiThreadedExecutor(num_threads=2)
        self.executor.add_node(self.node)
        self._spin = threading.Thread(target=self.executor.spin, daemon=True)
        self._spin.start()
        self.instruction = ActionClient(
            self.node, ExecuteInstruction, '/robotracer/execute_instruction'
        )
        self.trace_action = ActionClient(self.node, ExecuteTrace, '/robotracer/execute_trace')
        self.get_poses = self.node.create_client(GetObjectPoses, '/sim/get_object_poses')
        self.set_pose = self.node.create_client(SetObjectPose, '/sim/set_object_pose')
        self.gripper = self.node.create_client(SetBool, '/robotracer/gripper')
        self._joints: JointState | None = None
        self.node.create_subscription(JointState, '/joint_states', self._on_joints, 10)
        assert self.instruction.wait_for_server(timeout_sec=20)
        assert self.trace_action.wait_for_server(timeout_sec=20)
        assert self.get_poses.wait_for_service(timeout_sec=20)
        deadline = time.monotonic() + 10
        while self._joints is None and time.monotonic() < deadline:
            time.sleep(0.05)

    def _pump(self) -> None:
        for line in self.proc.stdout:
            self.log.append(line.rstrip())
            if line.startswith('[launch] ready'):
                self._ready.set()

    def _on_joints(self, msg: JointState) -> None:
        self._joints = msg

    # --- ground truth ---------------------------------------------------------------------
    def _wait(self, fut, timeout: float = 30.0):
        deadline = time.monotonic() + timeout
        while not fut.done():
            assert time.monotonic() < deadline, 'no answer in time'
            time.sleep(0.01)
        return fut.result()

    def poses(self) -> dict[str, tuple[np.ndarray, bool]]:
        res = self._wait(self.get_poses.call_async(GetObjectPoses.Request()))
        return {
            n: (np.array([p.position.x, p.position.y, p.position.z]), h)
            for n, p, h in zip(res.names, res.poses, res.held, strict=True)
        }

    def position(self, name: str) -> np.ndarray:
        return self.poses()[name][0]

    def move(self, name: str, xyz) -> SetObjectPose.Response:
        pose = Pose()
        pose.position.x, pose.position.y, pose.position.z = (float(v) for v in xyz)
        pose.orientation.w = 1.0
        return self._wait(self.set_pose.call_async(SetObjectPose.Request(name=name, pose=pose)))

    def reset(self) -> None:
        # a failed test may leave an object in the gripper: open it first
        self._wait(self.gripper.call_async(SetBool.Request(data=False)))
        time.sleep(0.3)
        for name, xyz in INITIAL.items():
            res = self.move(name, xyz)
            assert res.success, res.message
        time.sleep(0.5)  # let them settle and the camera see them

    def joints(self) -> np.ndarray:
        return np.array(self._joints.position)

    # --- goals ----------------------------------------------------------------------------
    def run(
        self,
        goal,
        client=None,
        on_feedback: Callable | None = None,
        cancel_after_s: float | None = None,
        timeout: float = 120.0,
    ):
        """Send a goal; returns (accepted, result or None, feedback list)."""
        client = client or self.instruction
        feedback: list = []

        def fb(msg) -> None:
            feedback.append((time.monotonic(), msg.feedback))
            if on_feedback:
                on_feedback(msg.feedback)

        handle = self._wait(client.send_goal_async(goal, feedback_callback=fb), 30)
        if not handle.accepted:
            return False, None, feedback
        res_fut = handle.get_result_async()
        t0 = time.monotonic()
        if cancel_after_s is not None:
            while time.monotonic() - t0 < cancel_after_s and not res_fut.done():
                time.sleep(0.01)
            self._wait(handle.cancel_goal_async())
        return True, self._wait(res_fut, timeout).result, feedback

    def instruct(self, text: str, **kw) -> ExecuteInstruction.Goal:
        goal = ExecuteInstruction.Goal(
            instruction=text,
            speed_scale=kw.pop('speed', 0.7),
            replanning=kw.pop('replanning', True),
            **kw,
        )
        return goal

    @staticmethod
    def trace_goal(points, frame: str = 'base_link', **kw) -> ExecuteTrace.Goal:
        msg = SpatialTrace()
        msg.header.frame_id = frame
        msg.points = [Point(x=float(x), y=float(y), z=float(z)) for x, y, z in points]
        return ExecuteTrace.Goal(trace=msg, speed_scale=kw.pop('speed', 0.7), **kw)

    def close(self) -> None:
        if rclpy.ok():
            self.executor.shutdown()
            self.node.destroy_node()
            rclpy.shutdown()
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
