"""Peer processes for the robotracer_msgs interface tests: each role in its own process over DDS.

Usage: python -m robotracer_ros.testing.interface_peers ROLE
  trace_publisher   publish a SpatialTrace on /robotracer/trace (transient local) until killed
  trace_server      serve /robotracer/get_trace (GetTrace) until killed
  execute_server    serve /robotracer/execute_trace (ExecuteTrace) with feedback and cancel
Prints "READY" once its endpoints exist.
"""

from __future__ import annotations

import sys
import time

from geometry_msgs.msg import Point
import rclpy
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

from robotracer_msgs.action import ExecuteTrace
from robotracer_msgs.msg import SpatialTrace
from robotracer_msgs.srv import GetTrace

LATCHED = QoSProfile(
    depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
)


def sample_trace(instruction: str) -> SpatialTrace:
    """A valid five-point trace in ``base_link`` stamped 42 s, as every peer sends it."""
    msg = SpatialTrace()
    msg.header.frame_id = 'base_link'
    msg.header.stamp.sec = 42
    msg.instruction = instruction
    msg.points = [Point(x=0.4 + 0.05 * i, y=-0.1 * i, z=0.02 + 0.01 * i) for i in range(5)]
    msg.pixel_u = [100.0 + i for i in range(5)]
    msg.pixel_v = [200.0 + i for i in range(5)]
    msg.depth = [1.0 + 0.1 * i for i in range(5)]
    msg.depth_source = [SpatialTrace.DEPTH_SENSOR] * 5
    msg.depth_disagreement = [False] * 5
    msg.model_id = 'test:peer'
    msg.raw_answer = '[(100, 200, 1.0)]'
    msg.inference_time = 0.25
    msg.status = SpatialTrace.STATUS_VALID
    return msg


class TracePublisher(Node):
    """Publishes one :func:`sample_trace` on ``/robotracer/trace`` (transient local)."""

    def __init__(self) -> None:
        super().__init__('test_trace_publisher')
        self.pub = self.create_publisher(SpatialTrace, '/robotracer/trace', LATCHED)
        self.pub.publish(sample_trace('put the red cup on the plate'))


class TraceServer(Node):
    """Serves ``/robotracer/get_trace``: a sample trace, or ERROR_BAD_REQUEST for no text."""

    def __init__(self) -> None:
        super().__init__('test_trace_server')
        self.srv = self.create_service(GetTrace, '/robotracer/get_trace', self.on_request)

    def on_request(self, req: GetTrace.Request, res: GetTrace.Response) -> GetTrace.Response:
        """Answer one GetTrace request."""
        if not req.instruction.strip():
            res.success = False
            res.error_code = GetTrace.Response.ERROR_BAD_REQUEST
            res.error_msg = 'instruction is empty'
            return res
        res.success = True
        res.trace = sample_trace(req.instruction)
        res.trace.header.frame_id = req.target_frame or 'base_link'
        return res


class ExecuteServer(Node):
    """Executes a trace 'slowly' (20 feedback steps of 50 ms) so the client can cancel."""

    def __init__(self) -> None:
        super().__init__('test_execute_server')
        self.server = ActionServer(
            self,
            ExecuteTrace,
            '/robotracer/execute_trace',
            self.execute,
            goal_callback=self.on_goal,
            cancel_callback=lambda _g: CancelResponse.ACCEPT,
            callback_group=ReentrantCallbackGroup(),
        )

    def on_goal(self, goal: ExecuteTrace.Goal) -> GoalResponse:
        """Accept a goal with points, reject an empty trace."""
        return GoalResponse.ACCEPT if goal.trace.points else GoalResponse.REJECT

    def execute(self, handle):  # noqa: ANN001
        """Run the goal: 20 feedback steps, cancelable between steps."""
        result = ExecuteTrace.Result()
        fb = ExecuteTrace.Feedback()
        fb.current_trace = handle.request.trace
        steps = 20
        for i in range(steps):
            if handle.is_cancel_requested:
                handle.canceled()
                result.error_code = ExecuteTrace.Result.ERROR_CANCELED
                result.error_msg = f'canceled at step {i}/{steps}'
                return result
            fb.phase = ExecuteTrace.Feedback.PHASE_EXECUTING
            fb.progress = float(i) / steps
            fb.message = f'step {i}'
            handle.publish_feedback(fb)
            time.sleep(0.05)
        handle.succeed()
        result.success = True
        result.executed_trace = handle.request.trace
        return result


def main() -> int:
    """Run the peer named by ``sys.argv[1]`` until SIGINT; returns the exit code."""
    role = sys.argv[1]
    rclpy.init()
    node = {
        'trace_publisher': TracePublisher,
        'trace_server': TraceServer,
        'execute_server': ExecuteServer,
    }[role]()
    executor = MultiThreadedExecutor()
    executor.add_node(node)
    print('READY', flush=True)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    return 0


if __name__ == '__main__':
    sys.exit(main())
