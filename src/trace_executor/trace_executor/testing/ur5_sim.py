"""The UR5 bringup a user starts (``robotracer launch ur5``), driven like a user drives it.

Starts ``robotracer launch ur5 oracle_port:=<free port>`` (simulator + oracle model server +
perception node + executor) and offers the calls a user makes: execute an instruction or a
trace, move objects, read ground truth and joint states.
"""

from __future__ import annotations

import shutil
import time

from geometry_msgs.msg import Point
import numpy as np
from sensor_msgs.msg import JointState
from std_srvs.srv import SetBool

from robotracer_msgs.msg import SpatialTrace
from trace_executor.testing.sim_harness import (
    ChildProcess,
    ExecuteInstruction,
    ExecuteTrace,
    SimClient,
    free_port,
)

__all__ = ['INITIAL', 'ExecuteInstruction', 'ExecuteTrace', 'Ur5Sim']

INITIAL = {  # config/scenes/ur5_tabletop.yaml: object centres resting on the table
    'red_cube': (0.45, -0.20, 0.0225),
    'blue_cube': (0.60, 0.05, 0.0225),
    'green_cube': (0.35, 0.10, 0.0225),
    'cup': (0.62, -0.30, 0.045),
}


class Ur5Sim(SimClient):
    """The running bringup plus a client node (call :meth:`close` at the end)."""

    node_name = 'ur5_e2e_client'

    def __init__(self, extra_args: tuple[str, ...] = ()) -> None:
        exe = shutil.which('robotracer')
        assert exe, 'source setup.bash first'
        self.port = free_port()
        argv = [exe, 'launch', 'ur5', f'oracle_port:={self.port}', *extra_args]
        self.bringup = ChildProcess('bringup', argv, '[launch] ready')
        try:
            self.bringup.wait(90)
        except AssertionError:
            self.bringup.stop()
            raise
        self.proc = self.bringup.proc
        self._connect(wait_s=20)
        self.gripper = self.node.create_client(SetBool, '/robotracer/gripper')
        self._joints: JointState | None = None
        self.node.create_subscription(JointState, '/joint_states', self._on_joints, 10)
        deadline = time.monotonic() + 10
        while self._joints is None and time.monotonic() < deadline:
            time.sleep(0.05)

    @property
    def log(self) -> list[str]:
        """The bringup's output lines."""
        return self.bringup.lines

    def _on_joints(self, msg: JointState) -> None:
        self._joints = msg

    def reset(self) -> None:
        """Gripper open, objects back where the scene file puts them."""
        # a failed test may leave an object in the gripper: open it first
        self._wait(self.gripper.call_async(SetBool.Request(data=False)))
        time.sleep(0.3)
        for name, xyz in INITIAL.items():
            res = self.move(name, xyz)
            assert res.success, res.message
        time.sleep(0.5)  # let them settle and the camera see them

    def joints(self) -> np.ndarray:
        """The latest joint positions (rad)."""
        return np.array(self._joints.position)

    @staticmethod
    def trace_goal(points, frame: str = 'base_link', **kw) -> ExecuteTrace.Goal:
        """An ExecuteTrace goal for points in ``frame``."""
        msg = SpatialTrace()
        msg.header.frame_id = frame
        msg.points = [Point(x=float(x), y=float(y), z=float(z)) for x, y, z in points]
        return ExecuteTrace.Goal(trace=msg, speed_scale=kw.pop('speed', 0.7), **kw)

    def close(self) -> None:
        """Stop the client and the bringup."""
        self.close_client()
        self.bringup.stop()
