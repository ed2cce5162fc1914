"""The G1 stack in child processes, driven like a user drives it.

Starts, each as its own process speaking only ROS 2 and the Unitree DDS interface:

- ``g1_world`` (MuJoCo G1 room, Unitree DDS peer on ``lo``, oracle model server on a free port),
- ``perception_node`` (``robotracer_http`` backend at the oracle, model depth, traces in the
  camera frame),
- ``g1_executor`` (unitree backend on ``lo``),

and a client with the calls a user makes (instructions, traces, cancel) plus the simulator's
ground truth and status for the checks.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from geometry_msgs.msg import Point
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import String
from std_srvs.srv import SetBool

from robotracer_msgs.msg import SpatialTrace, WholeBodyTarget
from trace_executor.execution import MotionStatus
from trace_executor.testing.sim_harness import (
    ChildProcess,
    ExecuteInstruction,
    ExecuteTrace,
    SimClient,
    free_port,
)

__all__ = ['CAMERA_FRAME', 'HOME_ROUTE', 'INITIAL', 'ExecuteInstruction', 'ExecuteTrace', 'G1Sim']

CAMERA_FRAME = 'd435_color_optical_frame'
#: The simulator's status rate in the tests: 25 Hz times the safety reactions to 40 ms (the
#: JSON status costs the simulator and the test client ~1 % of a core per 5 Hz).
STATUS_RATE_HZ = 25.0
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


def _ros(module: str, *params: str) -> list[str]:
    """``python -m module --ros-args -p a:=1 -p b:=2 ...``."""
    argv = ['python', '-m', module, '--ros-args']
    for p in params:
        argv += ['-p', p]
    return argv


class G1Sim(SimClient):
    """The running G1 stack plus a client node (call :meth:`close` at the end).

    Args:
        executor_args: extra ``--ros-args`` words for the executor (``-p name:=value`` ...).
        camera_rate: the simulated head camera's frame rate, Hz.
    """

    node_name = 'g1_e2e_client'

    def __init__(self, executor_args: tuple[str, ...] = (), camera_rate: float = 4.0) -> None:
        self.port = free_port()
        self.procs: list[ChildProcess] = []
        try:
            world = ChildProcess(
                'g1_world',
                _ros(
                    'robotracer_sim.nodes.g1_world_node',
                    f'oracle_port:={self.port}',
                    'oracle_latency:=0.1',
                    f'rate:={camera_rate}',
                    f'status_rate:={STATUS_RATE_HZ}',
                    'joint_state_rate:=10.0',
                    'odom_rate:=10.0',  # (the executor takes the camera pose from its topic)
                ),
                'g1_world ready',
            )
            self.procs.append(world)
            world.wait(120)
            perception = ChildProcess(
                'perception_node',
                _ros(
                    'robotracer_ros.nodes.perception_node',
                    'depth_source:=model',
                    f'model_url:=http://127.0.0.1:{self.port}',
                    'max_frame_age_s:=3.0',
                    'publish_annotated_image:=false',
                    'sync_slop_s:=0.05',
                ),
                'perception',
            )
            self.procs.append(perception)
            executor = ChildProcess(
                'g1_executor',
                _ros(
                    'trace_executor.nodes.g1_executor',
                    f'camera_frame:={CAMERA_FRAME}',
                    'network_interface:=lo',
                )
                + list(executor_args),
                'g1_executor ready',
            )
            self.procs.append(executor)
            executor.wait(90)
            self.world, self.perception, self.executor_proc = world, perception, executor
            self._connect(wait_s=30)
            self.pause = self.node.create_client(SetBool, '/sim/g1/pause_lowstate')
            self.status: list[tuple[float, dict]] = []
            self.targets: list[WholeBodyTarget] = []
            self.node.create_subscription(String, '/sim/g1/status', self._on_status, 50)
            latched = QoSProfile(
                depth=200,
                reliability=ReliabilityPolicy.RELIABLE,
                durability=DurabilityPolicy.TRANSIENT_LOCAL,
            )
            self.node.create_subscription(
                WholeBodyTarget, '/robotracer/g1/whole_body_target', self.targets.append, latched
            )
            missing = self.commander.wait_for_servers(60, actions=False, get_trace=True)
            assert not missing, 'no perception service:\n' + perception.text()[-3000:]
        except BaseException:
            self.close()
            raise

    def _on_status(self, msg: String) -> None:
        self.status.append((time.monotonic(), json.loads(msg.data)))
        if len(self.status) > 5000:
            del self.status[:1000]

    def set_paused(self, paused: bool) -> None:
        """Pause or resume the simulator's rt/lowstate."""
        res = self._wait(self.pause.call_async(SetBool.Request(data=paused)))
        assert res.success

    def real_time_factor(self, since: float) -> float | None:
        """Simulated seconds per wall-clock second since ``since`` (``time.monotonic()``).

        From the simulator's status stream; None when it spans less than a second.
        """
        window = [(t, st['time']) for t, st in list(self.status) if t >= since]
        if len(window) < 2 or window[-1][0] - window[0][0] < 1.0:
            return None
        (t0, s0), (t1, s1) = window[0], window[-1]
        return (s1 - s0) / (t1 - t0)

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
        domain = os.environ.get('ROS_DOMAIN_ID', '0')
        proc = subprocess.run(
            [sys.executable, '-m', __name__, 'walk-route', domain, json.dumps(list(route))],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert 'WALKED' in proc.stdout, f'walk back failed:\n{proc.stdout}\n{proc.stderr}'

    def reset_objects(self, allow_held: bool = False) -> list[str]:
        """Objects back where the scene file puts them.

        Args:
            allow_held: an object a hand holds (a goal that failed while carrying it) stays
                in the hand instead of failing the reset; the robot keeps holding it, as a
                real one would.

        Returns:
            The objects left in a hand.
        """
        held = []
        for name, xyz in INITIAL.items():
            res = self.move(name, xyz)
            if allow_held and not res.success and 'is held by the' in res.message:
                held.append(name)
                continue
            assert res.success, res.message
        time.sleep(0.6)  # settle, and the camera sees them
        return held

    @staticmethod
    def instruct(text: str, speed: float = 1.0, replanning: bool = True, **kw):
        """An ExecuteInstruction goal (full speed, replanning on unless told)."""
        return SimClient.instruct(text, speed=speed, replanning=replanning, **kw)

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
        if hasattr(self, 'node'):
            self.close_client()
        for p in reversed(self.procs):
            p.stop()


def walk_route(domain_id: int, route: list[tuple[float, float, float]]) -> None:
    """Walk the simulated G1 through ``route`` over LocoClient (one process: one DDS factory).

    Straight to the last waypoint when the robot is already in front of the tables.
    """
    from trace_executor.backends.unitree import UnitreeBackend, UnitreeConfig
    from trace_executor.g1.kinematics import G1Kinematics
    from trace_executor.g1.plan_types import WalkSegment

    config = UnitreeConfig(domain_id=domain_id, state_timeout_s=1.0)
    backend = UnitreeBackend(G1Kinematics(), config, log=lambda level, msg: None).start()
    assert backend.wait_for_state(10), 'no robot state'
    if backend.base_pose()[0] < 0.3:
        route = route[-1:]
    for x, y, yaw in route:
        res = backend.walk(WalkSegment((x, y, yaw), 'odom', 10.0), lambda: None, lambda f: None)
        assert res.status is MotionStatus.DONE, res.message
    backend.close()
    print('WALKED', flush=True)


if __name__ == '__main__':
    if len(sys.argv) == 4 and sys.argv[1] == 'walk-route':
        walk_route(int(sys.argv[2]), [tuple(w) for w in json.loads(sys.argv[3])])
    else:
        sys.exit('usage: python -m trace_executor.testing.g1_sim walk-route DOMAIN_ID ROUTE_JSON')
