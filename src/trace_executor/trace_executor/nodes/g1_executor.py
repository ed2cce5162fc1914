"""``ros2 run trace_executor g1_executor``: G1 humanoid trace execution, walking, replanning.

Design notes: docs/design-notes.md (trace_executor.nodes.g1_executor).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any

from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import Odometry
import numpy as np
from rcl_interfaces.msg import SetParametersResult
import rclpy
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.executors import ExternalShutdownException
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions
from rclpy.time import Time
from sensor_msgs.msg import CameraInfo, Image
from visualization_msgs.msg import MarkerArray

from robotracer_commander import wait_future
from robotracer_msgs.msg import SpatialTrace, WholeBodyTarget
from robotracer_msgs.srv import GetTrace
from robotracer_ros.images import depth_scale_for, depth_to_metres, image_to_numpy
from robotracer_ros.stamps import seconds
from trace_executor.errors import ErrorCode, PlanningError
from trace_executor.execution import (
    BackendError,
    Outcome,
    PerceptionError,
    TraceInput,
)
from trace_executor.g1.camera import PoseBuffer, pose_from_xyz_quat
from trace_executor.g1.collision import G1BodyMask
from trace_executor.g1.kinematics import G1Kinematics
from trace_executor.g1.plan_types import G1Plan
from trace_executor.g1.planner import G1Planner
from trace_executor.g1.search import (
    SearchingGoalRunner,
    Seen,
    failure_sight,
    trace_sight,
)
from trace_executor.g1.watcher import StanceSceneWatcher
from trace_executor.nodes.common import ExecutorNode
from trace_executor.nodes.g1_messages import plan_markers, whole_body_targets
from trace_executor.nodes.g1_parameters import (
    PARAMS,
    planner_config,
    search_config,
    start_up_warning,
    unitree_config,
)
from trace_executor.nodes.shutdown import ShutdownRequest, spin_until_shutdown
from trace_executor.scene_monitor import MonitorConfig, RobotMask
from trace_executor.trace_check import check_message


class G1ExecutorNode(ExecutorNode):
    """G1 executor: planner + unitree backend + moving-camera scene watcher."""

    def __init__(self) -> None:
        # the head camera moves: its pose comes from camera_pose_source, not camera_to_base_*
        super().__init__('g1_executor', PARAMS, fixed_camera=False)
        p = self.p
        self.odom_frame = p['odom_frame']
        self.base_frame = self.odom_frame  # the G1 plans in odom (it walks)
        self.camera_frame = p['camera_frame']
        self.search_config = search_config(p)
        self.planner = G1Planner(planner_config(p), log_rejection=self.get_logger().warning)
        # FK for the camera mount and the robot mask (the planner's model is the goal thread's)
        self._fk = G1Kinematics(camera_link=p['camera_link'])
        self._fk_lock = threading.Lock()
        self._body_mask = G1BodyMask(self._fk)
        self.camera_poses = PoseBuffer(max_gap_s=p['camera_pose_max_gap_s'])
        self.odom_poses = PoseBuffer(max_gap_s=p['camera_pose_max_gap_s'])
        sensors = MutuallyExclusiveCallbackGroup()
        if p['camera_pose_source'] == 'topic':
            self.create_subscription(
                PoseStamped,
                p['camera_pose_topic'],
                self._on_camera_pose,
                50,
                callback_group=sensors,
            )
        elif p['camera_pose_source'] == 'odometry':
            # (only then: a 50 Hz topic costs a Python executor ~5 % of a core for nothing)
            self.create_subscription(
                Odometry, p['odom_topic'], self._on_odom, 50, callback_group=sensors
            )
        else:
            source = p['camera_pose_source']
            raise ValueError(f"camera_pose_source must be 'topic' or 'odometry', got {source!r}")
        latched = QoSProfile(
            depth=200,
            reliability=ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.TRANSIENT_LOCAL,
        )
        self.target_pub = self.create_publisher(
            WholeBodyTarget, p['whole_body_target_topic'], latched
        )
        self.marker_pub = self.create_publisher(
            MarkerArray,
            p['markers_topic'],
            QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL),
        )
        self.backend = self._make_backend()
        self.watcher: StanceSceneWatcher | None = None
        if self.backend is not None:
            self.watcher = StanceSceneWatcher(
                MonitorConfig(
                    depth_threshold_m=p['change_threshold_m'],
                    min_changed_fraction=p['change_fraction'],
                ),
                robot_points=self._robot_points,
                log=lambda m: self.get_logger().warning(m),
            )
            qos = QoSProfile(
                depth=2,
                reliability=ReliabilityPolicy.RELIABLE
                if p['image_reliability'] == 'reliable'
                else ReliabilityPolicy.BEST_EFFORT,
            )
            depth_group = MutuallyExclusiveCallbackGroup()
            self.create_subscription(
                Image, p['depth_topic'], self._on_depth, qos, callback_group=depth_group
            )
            self.create_subscription(
                CameraInfo, p['camera_info_topic'], self._on_info, qos, callback_group=depth_group
            )
            self.runner = SearchingGoalRunner(
                self.planner,
                self.backend,
                look=self.look,
                holding=lambda: self.backend.holding() is not None,
                search=self.search_config,
                odom_frame=self.odom_frame,
                watcher=self.watcher,
                max_replans=p['max_replans'],
                publish_plan=self.publish_plan,
                log=lambda m: self.get_logger().info(m),
            )
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.get_logger().info(
            f'g1_executor ready: backend {p["backend"]}, odom frame {self.odom_frame}, camera '
            f'{self.camera_frame} (pose from {p["camera_pose_source"]}), actions '
            '/robotracer/execute_trace and /robotracer/execute_instruction'
        )

    # --- backend -------------------------------------------------------------------------
    def _make_backend(self) -> Any:
        p = self.p
        if p['backend'] != 'unitree':
            raise ValueError(f'unknown backend {p["backend"]!r}: expected unitree')
        domain = int(p['domain_id'])
        if domain < 0:
            domain = int(os.environ.get('ROS_DOMAIN_ID', '0') or 0)
        try:
            from trace_executor.backends.unitree import UnitreeBackend

            config = unitree_config(p, domain)
            backend = UnitreeBackend(self.planner.kinematics, config, self._backend_log).start()
        except (ImportError, BackendError, RuntimeError, OSError) as exc:
            self.get_logger().error(
                f'backend unitree cannot start: {exc}; goals will be rejected with error '
                f'{ErrorCode.BACKEND_UNAVAILABLE.name}'
            )
            return None
        if not backend.wait_for_state(10.0):
            self.get_logger().warning(start_up_warning(backend.missing_state(), p))
        return backend

    def _backend_log(self, level: str, msg: str) -> None:
        # One call site per severity: rclpy refuses a severity change at one call site.
        if level == 'info':
            self.get_logger().info(msg)
        elif level == 'warn':
            self.get_logger().warning(msg)
        else:
            self.get_logger().error(msg)

    def _on_set_parameters(self, params: list[Any]) -> SetParametersResult:
        for prm in params:
            if prm.name == 'state_timeout_s':
                v = float(prm.value)
                if not 0.01 <= v <= 1.0:
                    return SetParametersResult(
                        successful=False, reason=f'state_timeout_s must be in [0.01, 1], got {v}'
                    )
                if self.backend is not None:
                    self.backend.state_timeout_s = v
                self.get_logger().info(f'state_timeout_s = {v} s')
        return SetParametersResult(successful=True)

    # --- camera pose ---------------------------------------------------------------------
    def _on_camera_pose(self, msg: PoseStamped) -> None:
        p, q = msg.pose.position, msg.pose.orientation
        try:
            t = pose_from_xyz_quat([p.x, p.y, p.z], [q.x, q.y, q.z, q.w])
        except ValueError as exc:
            self.get_logger().warning(f'camera pose ignored: {exc}')
            return
        self.camera_poses.add(seconds(msg.header.stamp), t)

    def _on_odom(self, msg: Odometry) -> None:
        p, q = msg.pose.pose.position, msg.pose.pose.orientation
        try:
            t = pose_from_xyz_quat([p.x, p.y, p.z], [q.x, q.y, q.z, q.w])
        except ValueError:
            return
        self.odom_poses.add(seconds(msg.header.stamp), t)

    def camera_pose_at(self, stamp: float) -> np.ndarray | None:
        """odom_T_camera at an image stamp (s), or None when unknown."""
        if self.p['camera_pose_source'] == 'topic':
            return self.camera_poses.lookup(stamp)
        t_odom_pelvis = self.odom_poses.lookup(stamp)
        if t_odom_pelvis is None:
            return None
        q = self._upper_body_or_rest()
        with self._fk_lock:
            return t_odom_pelvis @ self._fk.camera_pose(q)

    def _upper_body_or_rest(self) -> np.ndarray:
        try:
            return self.backend.upper_body() if self.backend is not None else self.planner.rest_q
        except BackendError:
            return self.planner.rest_q

    # --- traces --------------------------------------------------------------------------
    def trace_input(self, msg: SpatialTrace) -> TraceInput:
        """A SpatialTrace → TraceInput in odom (camera frame: pose at the image stamp).

        Raises:
            PlanningError: INVALID_TRACE (no points, marked invalid, unknown frame, no camera
                pose at the trace's stamp).
        """
        check_message(len(msg.points), msg.status, msg.quality_note)
        frame = msg.header.frame_id or self.odom_frame
        pts = np.array([[p.x, p.y, p.z] for p in msg.points], dtype=float)
        if frame == self.odom_frame:
            return TraceInput(pts, frame, None, msg)
        if frame == self.camera_frame:
            stamp = seconds(msg.header.stamp)
            t = self.camera_pose_at(stamp)
            deadline = time.monotonic() + 1.0
            while t is None and time.monotonic() < deadline:
                # the pose of a just-taken image may still be on its way
                time.sleep(0.02)
                t = self.camera_pose_at(stamp)
            if t is None:
                span = self.camera_poses.span() or self.odom_poses.span()
                known = f'{span[0]:.3f}..{span[1]:.3f}' if span else 'none yet'
                raise PlanningError(
                    ErrorCode.INVALID_TRACE,
                    None,
                    f'no camera pose at the trace stamp {stamp:.3f} s (known: {known}); '
                    'cannot express it in ' + self.odom_frame,
                )
            return TraceInput(pts, frame, t, msg)
        raise PlanningError(
            ErrorCode.INVALID_TRACE,
            None,
            f'trace frame {frame!r} is neither {self.odom_frame!r} nor the camera frame '
            f'{self.camera_frame!r}',
        )

    def look(self, instruction: str) -> Seen:
        """Ask the perception node for a trace from where the robot stands: what is in view.

        Returns:
            The :class:`~trace_executor.g1.search.Seen`: the trace (camera frame, with its
            odom transform) and whether its end lies in the image, or no trace and what the
            failure says about visibility (the model does not see the object; a trace point
            behind the camera).

        Raises:
            PerceptionError: service missing or timed out, a failure that says nothing about
                visibility (model down, malformed answer), or no camera pose at the image stamp.
        """
        if not self.trace_client.wait_for_service(timeout_sec=5.0):
            raise PerceptionError(
                f'trace service {self.p["trace_service"]} is not available '
                '(is the perception node running?)'
            )
        req = GetTrace.Request(instruction=instruction, target_frame=self.camera_frame)
        not_before = self._wait_for_new_frame()
        if not_before is not None:  # a frame taken after the robot stopped, with a known pose
            req.not_before = Time(nanoseconds=int(not_before * 1e9)).to_msg()
        res = wait_future(self.trace_client.call_async(req), self.p['trace_timeout_s'])
        if (
            res is not None
            and not_before is not None
            and res.error_code == GetTrace.Response.ERROR_STALE_FRAME
        ):
            # No fresh frame reached the perception node in time (a starved camera or node):
            # the latest one it has will do when this node knows the pose it was taken from.
            self.get_logger().warning(f'{res.error_msg}: asking with the latest frame')
            req.not_before = Time().to_msg()
            res = wait_future(self.trace_client.call_async(req), self.p['trace_timeout_s'])
        if res is None:
            raise PerceptionError(f'trace service did not answer in {self.p["trace_timeout_s"]} s')
        if not res.success:
            why = f'perception failed (error {res.error_code}): {res.error_msg}'
            sight = failure_sight(res)
            if sight is None:
                raise PerceptionError(why)
            return Seen(sight, None, why)
        try:
            trace = self.trace_input(res.trace)
        except PlanningError as exc:
            raise PerceptionError(str(exc)) from exc
        msg = res.trace
        sight = trace_sight(msg.pixel_u, msg.pixel_v, msg.image_width, msg.image_height)
        return Seen(sight, trace, msg.quality_note)

    def _wait_for_new_frame(self) -> float | None:
        """Wait for a camera pose taken after now (the robot may have just stopped walking).

        Returns:
            The stamp the trace's image must not predate (now, or the oldest pose known when
            this node started later: an older image could not be placed in odom), or None when
            no newer pose came within ``fresh_frame_timeout_s`` (then the latest image is used).
        """
        buffer = self.camera_poses if self.p['camera_pose_source'] == 'topic' else self.odom_poses
        timeout_s = self.p['fresh_frame_timeout_s']
        now = self.get_clock().now().nanoseconds * 1e-9
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            latest = buffer.latest()
            if latest is not None and latest[0] >= now:
                return max(now, buffer.span()[0])
            time.sleep(0.02)
        self.get_logger().warning(
            f'no camera frame newer than {now:.2f} s after {timeout_s} s: asking anyway'
        )
        return None

    # --- scene monitor -------------------------------------------------------------------
    def _on_info(self, msg: CameraInfo) -> None:
        if self.watcher is not None:
            self.watcher.set_intrinsics(np.array(msg.k, dtype=float).reshape(3, 3))

    def _on_depth(self, msg: Image) -> None:
        if self.watcher is None:
            return
        stamp = seconds(msg.header.stamp)
        pose = self.camera_pose_at(stamp)
        if pose is None:
            return
        raw = image_to_numpy(
            msg.encoding, msg.height, msg.width, msg.step, msg.data, msg.is_bigendian
        )
        age = self.get_clock().now().nanoseconds * 1e-9 - stamp
        self.watcher.on_frame(depth_to_metres(raw, depth_scale_for(msg.encoding)), pose, age)

    def _robot_points(self) -> RobotMask | None:
        """The arms and hands in odom, and the grasp pose of the hand that holds, for masking."""
        if self.backend is None:
            return None
        try:
            state = self.backend.joint_positions()
        except BackendError:
            return None
        with self._fk_lock:
            return self._body_mask.at(state, self.backend.holding())

    # --- publishing ----------------------------------------------------------------------
    def publish_plan(self, plan: G1Plan) -> None:
        """The whole-body target sequence and markers of a plan."""
        stamp = self.get_clock().now().to_msg()
        for m in whole_body_targets(plan, self.planner.joint_names, self.odom_frame, stamp):
            self.target_pub.publish(m)
        self.marker_pub.publish(plan_markers(plan, self.odom_frame, stamp))
        self.get_logger().info(
            f'plan: {len(plan.targets)} whole-body targets, {len(plan.walks)} walk(s), '
            f'{plan.side} hand, {plan.duration_s:.1f} s ({plan.note}); planned in '
            f'{plan.timings_ms["total"]:.0f} ms'
        )

    # --- goals ---------------------------------------------------------------------------
    def _finish(self, heartbeat: Any, handle: Any, result: Any, outcome: Outcome) -> Any:
        # A goal that did not succeed leaves nothing engaged: arms back to the locomotion
        # controller (weight ramped out), base stopped.
        if not outcome.success and self.backend is not None and self.backend.arms_engaged:
            self.get_logger().warning('goal ended early: ramping the arm_sdk weight out')
            self.backend.release_arms()
        return super()._finish(heartbeat, handle, result, outcome)

    def halt(self, reason: str) -> None:
        """Stop the robot for good and end the running goal (executor shutdown).

        The backend ramps the arm_sdk weight out, sends StopMove and ends the running walk or
        arm motion with ``reason``; the goal runner sees a cancel at its next check.
        """
        if self.backend is not None:
            self.backend.halt(reason)
        self.end_running_goal(ErrorCode.SHUTDOWN)

    def goal_running(self) -> bool:
        """True while a goal is being executed."""
        return self._busy.locked()

    def shutdown(self) -> None:
        """Hand the arms back and stop the backend."""
        if self.backend is not None:
            self.backend.close()


def main(args: list[str] | None = None) -> int:
    """Run the node until SIGINT/SIGTERM; stop the robot before anything is destroyed."""
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    request = ShutdownRequest.install()
    node = None
    code = 0
    try:
        node = G1ExecutorNode()
        spin_until_shutdown(node, request, node.halt, node.goal_running)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except ValueError as exc:
        print(f'g1_executor: cannot start: {exc}', file=sys.stderr, flush=True)
        code = 1
    finally:
        if node is not None:
            node.shutdown()
            node.destroy_node()
        rclpy.try_shutdown()
    return code


if __name__ == '__main__':
    sys.exit(main())
