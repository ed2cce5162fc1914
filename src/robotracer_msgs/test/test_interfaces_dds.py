"""The built interfaces work across real processes over DDS: topic, service and action.

The peers (publisher, service and action server) run in their own processes from
``robotracer_ros.testing.interface_peers``.
"""

from __future__ import annotations

import math
import os
import time

import pytest

rclpy = pytest.importorskip('rclpy')
from rclpy.action import ActionClient  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy  # noqa: E402

from robotracer_msgs.action import ExecuteTrace  # noqa: E402
from robotracer_msgs.msg import SpatialTrace  # noqa: E402
from robotracer_msgs.srv import GetTrace  # noqa: E402
from robotracer_ros.testing.interface_peers import sample_trace  # noqa: E402

PEERS = ['python', '-m', 'robotracer_ros.testing.interface_peers']


def wait_ready(proc, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.strip() == 'READY':
            return
        if not line and proc.poll() is not None:
            break
    raise AssertionError(f'peer did not start (exit code {proc.poll()})')


@pytest.fixture
def node():
    rclpy.init()
    n = rclpy.create_node('interface_test_client')
    ex = SingleThreadedExecutor()
    ex.add_node(n)
    yield n, ex
    n.destroy_node()
    rclpy.shutdown()


def spin_until(ex, pred, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        ex.spin_once(timeout_sec=0.05)
    return pred()


def test_spatial_trace_crosses_processes(spawn, node):
    n, ex = node
    wait_ready(spawn([*PEERS, 'trace_publisher']))
    got: list[SpatialTrace] = []
    qos = QoSProfile(
        depth=1,
        reliability=ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.TRANSIENT_LOCAL,
    )
    n.create_subscription(SpatialTrace, '/robotracer/trace', got.append, qos)
    assert spin_until(ex, lambda: got, 15.0), 'no SpatialTrace arrived from the other process'
    msg = got[0]
    assert msg.instruction == 'put the red cup on the plate'
    assert msg.header.frame_id == 'base_link' and msg.header.stamp.sec == 42
    assert len(msg.points) == 5 and math.isclose(msg.points[4].x, 0.6)
    assert list(msg.depth_source) == [SpatialTrace.DEPTH_SENSOR] * 5
    assert msg.status == SpatialTrace.STATUS_VALID


def test_get_trace_round_trip(spawn, node):
    n, ex = node
    wait_ready(spawn([*PEERS, 'trace_server']))
    cli = n.create_client(GetTrace, '/robotracer/get_trace')
    assert spin_until(ex, cli.service_is_ready, 15.0), 'GetTrace service never appeared'

    def call(req):
        fut = cli.call_async(req)
        assert spin_until(ex, fut.done, 10.0)
        return fut.result()

    res = call(GetTrace.Request(instruction='push the blue block', target_frame='world'))
    assert res.success and res.error_code == GetTrace.Response.ERROR_NONE
    assert res.trace.instruction == 'push the blue block'
    assert res.trace.header.frame_id == 'world' and len(res.trace.points) == 5
    bad = call(GetTrace.Request(instruction='  '))
    assert not bad.success
    assert bad.error_code == GetTrace.Response.ERROR_BAD_REQUEST and 'empty' in bad.error_msg


def _send(n, ex, client, goal):
    fut = client.send_goal_async(goal, feedback_callback=None)
    assert spin_until(ex, fut.done, 10.0)
    return fut.result()


def test_execute_trace_feedback_result_and_cancel(spawn, node):
    n, ex = node
    wait_ready(spawn([*PEERS, 'execute_server']))
    client = ActionClient(n, ExecuteTrace, '/robotracer/execute_trace')
    assert spin_until(ex, client.server_is_ready, 15.0), 'ExecuteTrace server never appeared'

    # 1. A full run: feedback with increasing progress, then success with the trace back.
    feedback: list[float] = []
    goal = ExecuteTrace.Goal(trace=sample_trace('follow this'), speed_scale=0.5)
    fut = client.send_goal_async(
        goal, feedback_callback=lambda f: feedback.append(f.feedback.progress)
    )
    assert spin_until(ex, fut.done, 10.0)
    handle = fut.result()
    assert handle.accepted
    res_fut = handle.get_result_async()
    assert spin_until(ex, res_fut.done, 15.0)
    result = res_fut.result().result
    assert result.success and result.executed_trace.instruction == 'follow this'
    assert len(feedback) >= 5 and feedback == sorted(feedback)

    # 2. Cancel mid-way: the server stops and reports ERROR_CANCELED.
    handle = _send(n, ex, client, ExecuteTrace.Goal(trace=sample_trace('cancel me')))
    assert handle.accepted
    t_end = time.monotonic() + 0.3
    spin_until(ex, lambda: time.monotonic() > t_end, 1.0)
    cancel_fut = handle.cancel_goal_async()
    assert spin_until(ex, cancel_fut.done, 10.0)
    res_fut = handle.get_result_async()
    assert spin_until(ex, res_fut.done, 10.0)
    result = res_fut.result().result
    assert not result.success and result.error_code == ExecuteTrace.Result.ERROR_CANCELED

    # 3. An empty trace is rejected at the door.
    handle = _send(n, ex, client, ExecuteTrace.Goal(trace=SpatialTrace()))
    assert not handle.accepted


def test_domain_is_isolated():
    # The root conftest gives every pytest run its own domain and localhost-only discovery.
    assert os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] == 'LOCALHOST'
    assert 1 <= int(os.environ['ROS_DOMAIN_ID']) <= 100
