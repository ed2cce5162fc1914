"""`robotracer launch`: two UR5 bringups side by side, under ``/left`` and ``right``.

``robotracer launch ur5 namespace:=/left oracle_port:=P1`` and ``namespace:=right
oracle_port:=P2`` (normalised to ``/right``) each start a simulator, its oracle, a perception
node and an executor. Each must serve its own instructions: an instruction to ``/left`` moves
the left cell's cube and not the right's, an instruction to ``/right`` is perceived and planned
by the right cell, and nothing of either bringup is left in the root namespace.
(Runs as ``robotracer launch`` does; the ``ros2 launch`` file gives the same ``--ros-args``,
see test_bringup.py.)
"""

from __future__ import annotations

from collections.abc import Iterator
import os
import shutil
import signal
import socket
import subprocess
import threading
import time

import numpy as np
import pytest

rclpy = pytest.importorskip('rclpy')

from rclpy.executors import MultiThreadedExecutor  # noqa: E402

from robotracer_commander import Commander  # noqa: E402
from robotracer_msgs.srv import GetObjectPoses  # noqa: E402

PLATE = np.array([0.60, -0.08])  # config/scenes/ur5_tabletop.yaml
RED_CUBE = np.array([0.45, -0.20])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


class Bringup:
    """``robotracer launch ur5 namespace:=<ns> oracle_port:=<free>`` with its output kept."""

    def __init__(self, namespace: str) -> None:
        exe = shutil.which('robotracer')
        assert exe, 'source setup.bash first'
        self.lines: list[str] = []
        self.ready = threading.Event()
        argv = [exe, 'launch', 'ur5', f'namespace:={namespace}', f'oracle_port:={_free_port()}']
        self.proc = subprocess.Popen(
            argv,
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
            if '[launch] ready' in line:
                self.ready.set()

    def wait(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not self.ready.wait(0.5):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail('bringup did not start:\n' + '\n'.join(self.lines[-40:]))

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)


@pytest.fixture(scope='module')
def cells() -> Iterator[dict[str, tuple[Commander, object]]]:
    left, right = Bringup('/left'), Bringup('right')
    try:
        left.wait(240)
        right.wait(240)
        rclpy.init()
        node = rclpy.create_node('two_cells_client')
        executor = MultiThreadedExecutor(num_threads=2)
        executor.add_node(node)
        threading.Thread(target=executor.spin, daemon=True).start()
        out = {}
        for ns in ('/left', '/right'):
            commander = Commander(
                node,
                spin=False,
                execute_instruction=f'{ns}/robotracer/execute_instruction',
                execute_trace=f'{ns}/robotracer/execute_trace',
                get_trace=f'{ns}/robotracer/get_trace',
            )
            assert commander.wait_for_servers(30, get_trace=True) == []
            poses = node.create_client(GetObjectPoses, f'{ns}/sim/get_object_poses')
            assert poses.wait_for_service(timeout_sec=30)
            out[ns] = (commander, poses)
        out['node'] = node
        yield out
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    finally:
        left.stop()
        right.stop()


def _position(poses: object, name: str) -> np.ndarray:
    future = poses.call_async(GetObjectPoses.Request())
    deadline = time.monotonic() + 30
    while not future.done():
        assert time.monotonic() < deadline
        time.sleep(0.02)
    res = future.result()
    p = res.poses[list(res.names).index(name)].position
    return np.array([p.x, p.y, p.z])


@pytest.mark.slow
def test_two_namespaced_bringups_each_serve_their_own_instructions(cells) -> None:
    left, left_poses = cells['/left']
    right, right_poses = cells['/right']
    # (replanning off: this is about names, not the scene monitor's margins on a loaded machine)
    out = left.execute_instruction(
        'put the red cube on the plate', speed_scale=1.0, disable_replanning=True, timeout_s=240
    )
    assert out.success, out.message
    assert np.linalg.norm(_position(left_poses, 'red_cube')[:2] - PLATE) < 0.06
    assert np.linalg.norm(_position(right_poses, 'red_cube')[:2] - RED_CUBE) < 0.01
    out = right.execute_instruction('put the green cube on the plate', dry_run=True, timeout_s=240)
    assert out.success, out.message
    # nothing of either bringup in the root namespace
    node = cells['node']
    names = {n for n, _ in node.get_service_names_and_types()}
    names |= {n for n, _ in node.get_topic_names_and_types()}
    root = sorted(
        n
        for n in names
        if n.startswith(('/robotracer/', '/sim/', '/camera/', '/joint_states', '/scaled_joint'))
    )
    assert root == [], root
