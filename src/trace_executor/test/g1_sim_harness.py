"""Harness for the G1 end-to-end tests: simulator, perception and executor in child processes.

Starts, each as its own process speaking only ROS 2 and the Unitree DDS interface:

- ``g1_world`` (MuJoCo G1 room, Unitree DDS peer on ``lo``, oracle model server on a free port),
- ``perception_node`` (``robotracer_http`` backend at the oracle, model depth, traces in the
  camera frame),
- ``g1_executor`` (unitree backend on ``lo``),

and a client node with the calls a user makes (instructions, traces, cancel) plus the
simulator's ground truth and status for the checks.
"""

from __future__ import annotations

from collections.abc import Callable
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

from geometry_msgs.msg import Point, Pose
import numpy as np
import rclpy
from rclpy.action import ActionClient
from rclpy.executors import MultiThreadedExecutor
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import String
from std_srvs.srv import SetBool

from robotracer_msgs.action import ExecuteInstruction, ExecuteTrace
from robotracer_msgs.msg import SpatialTrace, WholeBodyTarget
from robotracer_msgs.srv import GetObjectPoses, SetObjectPose

CAMERA_FRAME = 'd435_color_optical_frame'
STATUS_RATE_HZ = 50.0
#: From anywhere near the tables back to the start pose, around the near table's left end.
HOME_ROUTE = ((1.0, 0.8, 3.14), (0.1, 0.8, -1.57), (0.0, 0.0, 0.0))
#: config/scenes/g1_room.yaml: object centres resting on their tables
INITIAL = {
    'red_cup': (0.45, 0.12, 0.765),
    'blue_block': (0.48, -0.15, 0.7425),
    'yellow_bottle': (0.62, -0.32, 0.80),
    'plate': (1.42, 0.62, 0.73),
    'green_bowl': (1.6, 0.95, 0.75),
}


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


class _Proc:
    def __init__(self, name: str, args: list[str], ready: str) -> None:
        self.name = name
        self.lines: list[str] = []
        self._ready_text = ready
        self.ready = threading.Event()
        self.proc = subprocess.Popen(
            [sys.executable, *args],
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
        deadline = time.monotonic() + timeout
        while not self.ready.wait(0.2):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f'{self.name} did not start:\n' + '\n'.join(self.lines[-40:]))

    def text(self) -> str:
        return '\n'.join(self.lines)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)


class G1Sim:
    """The running G1 stack plus a ROS client node (call :meth:`close` at the end)."""

    def __init__(self, executor_args: tuple[str, ...] = (), camera_rate: float = 4.0) -> None:
        self.port = free_port()
        self.procs: list[_Proc] = []
        try:
            world = _Proc(
                'g1_world',
                ['-m', 'robotracer_sim.nodes.g1_world_node', '--ros-args',
                 '-p', f'oracle_port:={self.port}', '-p', 'oracle_latency:=0.1',
                 '-p', f'rate:={camera_rate}', '-p', f'status_rate:={STATUS_RATE_HZ}',
                 '-p', 'joint_state_rate:=10.0'],
                'g1_world ready',
            )  # fmt: skip
            self.procs.append(world)
            world.wait(120)
            perception = _Proc(
                'perception_node',
                ['-m', 'robotracer_ros.nodes.perception_node', '--ros-args',
                 '-p', 'depth_source:=model', '-p', f'model_url:=http://127.0.0.1:{self.port}',
                 '-p', 'max_frame_age_s:=3.0', '-p', 'publish_annotated_image:=false',
                 '-p', 'sync_slop_s:=0.05'],
                'perception',
            )  # fmt: skip
            self.procs.append(perception)
            executor = _Proc(
                'g1_executor',
                ['-m', 'trace_executor.nodes.g1_executor', '--ros-args',
                 '-p', f'camera_frame:={CAMERA_FRAME}', '-p', 'network_interface:=lo',
                 *executor_args],
                'g1_executor ready',
            )  # fmt: skip
            self.procs.append(executor)
            executor.wait(90)
            self.world, self.perception, self.executor_proc = world, perception, executor
            rclpy.init()
            self.node = rclpy.create_node('g1_e2e_client')
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
            self.pause = self.node.create_client(SetBool, '/sim/g1/pause_lowstate')
            self.status: list[tuple[float, dict]] = []
            self.targets: list[WholeBodyTarget] = []
            self.node.create_subscription(String, '/sim/g1/status', self._on_status, 50)
            self.node.create_subscription(
                WholeBodyTarget,
                '/robotracer/g1/whole_body_target',
                self.targets.append,
                QoSProfile(depth=200, reliability=ReliabilityPolicy.RELIABLE,
                           durability=DurabilityPolicy.TRANSIENT_LOCAL),
            )  # fmt: skip
            assert self.instruction.wait_for_server(timeout_sec=30), 'no instruction action'
            assert self.trace_action.wait_for_server(timeout_sec=30), 'no trace action'
            assert self.get_poses.wait_for_service(timeout_sec=30), 'no ground truth service'
            client = self.node.create_client(
                __import__('robotracer_msgs.srv', fromlist=['GetTrace']).GetTrace,
                '/robotracer/get_trace',
            )
            assert client.wait_for_service(timeout_sec=60), (
                'no perception service:\n' + perception.text()[-3000:]
            )
        except BaseException:
            self.close()
            raise

    def _on_status(self, msg: String) -> None:
        self.status.append((time.monotonic(), json.loads(msg.data)))
        if len(self.status) > 5000:
            del self.status[:1000]

    # --- ground truth ---------------------------------------------------------------------
    def _wait(self, fut, timeout: float = 10.0):
        deadline = time.monotonic() + timeout
        while not fut.done():
            assert time.monotonic() < deadline, 'no answer in time'
            time.sleep(0.01)
        return fut.result()

    def poses(self) -> dict[str, tuple[np.ndarray, bool]]:
        """Ground-truth object positions (odom) and whether a hand holds them."""
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

    def set_paused(self, paused: bool) -> None:
        """Pause or resume the simulator's rt/lowstate."""
        res = self._wait(self.pause.call_async(SetBool.Request(data=paused)))
        assert res.success

    def latest_status(self) -> dict:
        """The newest simulator status (JSON)."""
        deadline = time.monotonic() + 5
        while not self.status and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.status[-1][1]

    def wait_idle(self, timeout: float = 20.0) -> dict:
        """Wait until the arms are back with the locomotion controller and the base is still."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            s = self.latest_status()
            if (
                s['arm_sdk_weight'] == 0
                and not any(s['base_command'])
                and not any(s['base_velocity'])
            ):
                return s
            time.sleep(0.1)
        raise AssertionError(f'robot not idle: {self.latest_status()}')

    def walk_back(self, route: tuple[tuple[float, float, float], ...] = HOME_ROUTE) -> None:
        """Drive the robot home like an operator with the remote (LocoClient over DDS).

        A child process (the SDK's DDS factory is per process) walks the base through ``route``
        (odom x, y, yaw waypoints; the default goes around the tables) with the same closed
        loop the executor uses; the arms stay with the locomotion controller.
        """
        code = (
            'import sys\n'
            'from trace_executor.backends.unitree import UnitreeBackend, UnitreeConfig\n'
            'from trace_executor.g1.kinematics import G1Kinematics\n'
            'from trace_executor.g1.planner import WalkSegment\n'
            'b = UnitreeBackend(G1Kinematics(), UnitreeConfig(domain_id=int(sys.argv[1]),'
            ' state_timeout_s=1.0), log=lambda l, m: None).start()\n'
            'assert b.wait_for_state(10), "no robot state"\n'
            'route = ' + repr(list(route)) + '\n'
            'if b.base_pose()[0] < 0.3:\n'  # in front of the tables already: straight home
            '    route = route[-1:]\n'
            'for x, y, yaw in route:\n'
            '    r = b.walk(WalkSegment((x, y, yaw), "odom", 10.0), lambda: None,'
            ' lambda f: None)\n'
            '    assert r.status.value == "done", r.message\n'
            'b.close()\n'
            'print("WALKED", flush=True)\n'
        )
        domain = os.environ.get('ROS_DOMAIN_ID', '0')
        proc = subprocess.run(
            [sys.executable, '-c', code, domain], capture_output=True, text=True, timeout=120
        )
        assert 'WALKED' in proc.stdout, f'walk back failed:\n{proc.stdout}\n{proc.stderr}'

    def reset_objects(self) -> None:
        """Objects back where the scene file puts them (none may be held)."""
        for name, xyz in INITIAL.items():
            res = self.move(name, xyz)
            assert res.success, res.message
        time.sleep(0.6)  # settle, and the camera sees them

    # --- goals ----------------------------------------------------------------------------
    def run(
        self,
        goal,
        client=None,
        on_feedback: Callable | None = None,
        timeout: float = 180.0,
    ):
        """Send a goal; returns (accepted, result or None, [(t, feedback)])."""
        client = client or self.instruction
        feedback: list = []

        def fb(msg) -> None:
            feedback.append((time.monotonic(), msg.feedback))
            if on_feedback:
                on_feedback(msg.feedback)

        handle = self._wait(client.send_goal_async(goal, feedback_callback=fb), 30)
        if not handle.accepted:
            return False, None, feedback
        self.handle = handle
        return True, self._wait(handle.get_result_async(), timeout).result, feedback

    @staticmethod
    def instruct(text: str, **kw) -> ExecuteInstruction.Goal:
        """An ExecuteInstruction goal (full speed, replanning on unless told)."""
        return ExecuteInstruction.Goal(
            instruction=text,
            speed_scale=kw.pop('speed', 1.0),
            replanning=kw.pop('replanning', True),
            **kw,
        )

    @staticmethod
    def trace_goal(points, frame: str = 'odom', **kw) -> ExecuteTrace.Goal:
        """An ExecuteTrace goal for points in ``frame``."""
        msg = SpatialTrace()
        msg.header.frame_id = frame
        msg.points = [Point(x=float(x), y=float(y), z=float(z)) for x, y, z in points]
        return ExecuteTrace.Goal(trace=msg, speed_scale=kw.pop('speed', 1.0), **kw)

    def save_logs(self, folder: str) -> None:
        """Write each process's output to ``folder/<name>.log`` (for failures)."""
        os.makedirs(folder, exist_ok=True)
        for p in self.procs:
            with open(os.path.join(folder, f'{p.name}.log'), 'w') as f:
                f.write(p.text())

    def close(self) -> None:
        """Stop the client and every process."""
        if rclpy.ok():
            self.executor.shutdown()
            self.node.destroy_node()
            rclpy.shutdown()
        for p in reversed(self.procs):
            p.stop()
