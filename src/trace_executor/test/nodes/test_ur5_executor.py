"""The UR5 executor node on a UR driver stand-in: the gripper parameter and its refusals.

The node runs in this process with the ``ros2_control`` backend against
:class:`~trace_executor.testing.ur_driver.UrDriverStandIn` (scaled JTC, joint states, speed
scaling), goals come through the Commander over DDS. With ``gripper: none`` a ``pick_place``
goal is refused with a clear message before anything moves, while a ``follow`` goal runs.
"""

from __future__ import annotations

from collections.abc import Iterator
import threading
import time
from typing import Any
import uuid

import numpy as np
import pytest

pytest.importorskip('rclpy')

import rclpy  # noqa: E402
from rclpy.executors import MultiThreadedExecutor  # noqa: E402

from robotracer_commander import Commander  # noqa: E402
from trace_executor.testing.ur_driver import UrDriverStandIn  # noqa: E402
from trace_executor.ur5 import UR5_HOME, UR5_JOINT_NAMES  # noqa: E402

FOLLOW = [[0.40, -0.10, 0.15], [0.45, 0.0, 0.15], [0.40, 0.10, 0.15]]
PICK = [[0.45, -0.20, 0.0225], [0.45, -0.05, 0.10], [0.45, 0.10, 0.0225]]


@pytest.fixture
def executor_on_driver() -> Iterator[tuple[Any, UrDriverStandIn, Commander]]:
    from trace_executor.nodes.ur5_executor import Ur5ExecutorNode

    ns = f'/ur5_gripper_{uuid.uuid4().hex[:8]}'
    rclpy.init(args=['--ros-args', '-r', f'__ns:={ns}', '-p', 'gripper:=none'])
    driver_node = rclpy.create_node('ur_driver', namespace=ns)
    driver = UrDriverStandIn(driver_node, UR5_JOINT_NAMES, np.array(UR5_HOME))
    node = Ur5ExecutorNode()
    executor = MultiThreadedExecutor(num_threads=4)
    executor.add_node(driver_node)
    executor.add_node(node)
    spin = threading.Thread(target=executor.spin, daemon=True)
    spin.start()
    client_node = rclpy.create_node('client', namespace=ns)
    commander = Commander(
        client_node,
        execute_trace=node.resolve_topic_name('robotracer/execute_trace'),
        execute_instruction=node.resolve_topic_name('robotracer/execute_instruction'),
    )
    try:
        yield node, driver, commander
    finally:
        commander.close()
        driver.close()
        executor.shutdown(timeout_sec=2)
        spin.join(timeout=2)
        node.destroy_node()
        driver_node.destroy_node()
        rclpy.try_shutdown()


def test_gripper_none_refuses_pick_place_before_moving(executor_on_driver: Any) -> None:
    node, driver, commander = executor_on_driver
    assert commander.wait_for_servers(timeout_s=20) == []
    q0 = driver.state()[0]
    out = commander.execute_trace(PICK, mode='pick_place', timeout_s=60)
    assert not out.success
    assert out.message.startswith('pick_place needs a gripper'), out.message
    assert 'gripper none' in out.message and 'mode follow or push' in out.message
    time.sleep(0.3)
    assert driver.received == []  # nothing was sent to the controller
    np.testing.assert_allclose(driver.state()[0], q0, atol=1e-9)


def test_gripper_none_still_runs_a_follow_goal(executor_on_driver: Any) -> None:
    node, driver, commander = executor_on_driver
    assert commander.wait_for_servers(timeout_s=20) == []
    out = commander.execute_trace(FOLLOW, mode='follow', speed_scale=1.0, timeout_s=90)
    assert out.success, out.message
    tcp = node.planner.forward_tcp(driver.state()[0])[:3, 3]
    assert np.linalg.norm(tcp - np.array(FOLLOW[-1])) < 0.01


def test_executor_names_are_relative() -> None:
    """Absolute names would escape a namespace (namespace:=/left): every default is relative."""
    from trace_executor.nodes.ur5_executor import PARAMS

    names = [p for p in PARAMS if p.name.endswith(('_topic', '_service'))]
    assert len(names) >= 6
    assert [(p.name, p.default) for p in names if str(p.default).startswith('/')] == []
