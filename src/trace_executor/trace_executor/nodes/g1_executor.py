"""``ros2 run trace_executor g1_executor``: G1 humanoid trace execution, walking, replanning.

Design notes: docs/design-notes.md (trace_executor.nodes.g1_executor).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any

from geometry_msgs.msg import Point, Pose, Pose2D, PoseStamped
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
from std_msgs.msg import ColorRGBA
from visualization_msgs.msg import Marker, MarkerArray

from robotracer_commander import wait_future
from robotracer_msgs.msg import SpatialTrace, WholeBodyTarget
from robotracer_msgs.srv import GetTrace
from robotracer_ros.images import depth_scale_for, depth_to_metres, image_to_numpy
from robotracer_ros.parameters import Param
from robotracer_ros.transforms import matrix_to_quaternion
from trace_executor.errors import ErrorCode, PlanningError
from trace_executor.execution import (
    BackendError,
    Outcome,
    PerceptionError,
    TraceInput,
)
from trace_executor.g1.camera import PoseBuffer, pose_from_xyz_quat
from trace_executor.g1.collision import G1BodyMask
from trace_executor.g1.config import G1PlannerConfig
from trace_executor.g1.kinematics import G1Kinematics
from trace_executor.g1.plan_types import G1Plan
from trace_executor.g1.planner import G1Planner
from trace_executor.g1.search import (
    SearchConfig,
    SearchingGoalRunner,
    Seen,
    failure_sight,
    trace_sight,
)
from trace_executor.g1.stance import ReachRegion, stance_matrix
from trace_executor.g1.walk import WalkLimits
from trace_executor.g1.watcher import StanceSceneWatcher
from trace_executor.nodes.common import ExecutorNode
from trace_executor.nodes.shutdown import ShutdownRequest, spin_until_shutdown
from trace_executor.scene_monitor import MonitorConfig, RobotMask
from trace_executor.trace_check import check_message

PARAMS = [
    Param('backend', 'unitree', 'robot backend: unitree (unitree_sdk2py over CycloneDDS)'),
    Param('domain_id', -1, 'DDS domain of the robot; -1: $ROS_DOMAIN_ID or 0', -1, 232),
    Param('network_interface', 'lo', "interface of the robot's network (lo: the simulator)"),
    Param('loco_service', 'sport', "LocoClient RPC service ('sport'; 'loco' on old firmware)"),
    Param(
        'standing_pelvis_z_m',
        0.0,
        "pelvis height of the standing robot, m, used only while rt/odommodestate (the robot's "
        'onboard state estimation, which runs with its locomotion service) has never arrived: '
        '> 0 lets arm-only goals plan with the pelvis at the odom origin at this height (G1: '
        'about 0.79); 0 refuses them. Walking always needs odometry',
        0.0,
        1.2,
    ),
    Param('odom_frame', 'odom', 'world/odometry frame: traces are planned in it'),
    Param('camera_pose_source', 'topic', 'camera pose at an image stamp: topic | odometry'),
    Param('camera_pose_topic', '/sim/g1/camera_pose', 'PoseStamped camera pose in odom'),
    Param('odom_topic', '/odom', 'nav_msgs/Odometry odom -> pelvis (camera_pose_source odometry)'),
    Param('camera_link', 'd435_link', 'URDF link of the head camera (its optical frame is added)'),
    Param('camera_pose_max_gap_s', 0.1, 'largest stamp gap to a known camera pose, s', 0.0, 5.0),
    Param(
        'depth_topic',
        '/camera/camera/aligned_depth_to_color/image_raw',
        'depth image for the scene monitor (16UC1 mm or 32FC1 m)',
    ),
    Param('camera_info_topic', '/camera/camera/color/camera_info', 'camera_info of the depth'),
    Param(
        'image_reliability',
        'reliable',
        'depth subscription reliability: reliable | best_effort; match the publisher',
        choices=('reliable', 'best_effort'),
    ),
    Param(
        'fresh_frame_timeout_s',
        5.0,
        'before looking again after a walk or turn, longest wait for a camera frame taken '
        'after the robot stopped, s (then it asks with the latest one)',
        0.0,
        30.0,
    ),
    Param('change_threshold_m', 0.03, 'scene monitor: pixel depth change, m', 0.005, 0.5),
    Param('change_fraction', 0.25, 'scene monitor: changed fraction of a region', 0.01, 1.0),
    Param('whole_body_target_topic', '/robotracer/g1/whole_body_target', 'WholeBodyTarget'),
    Param('markers_topic', '/robotracer/g1/markers', 'MarkerArray of the plan'),
    Param('arm_rate_hz', 50.0, 'rt/arm_sdk rate, Hz', 10.0, 500.0),
    Param(
        'state_timeout_s',
        0.1,
        'rt/lowstate older than this is stale, s (settable)',
        0.01,
        1.0,
        read_only=False,
    ),
    Param('ramp_in_s', 1.0, 'arm_sdk weight ramp-in time, s', 1.0, 10.0),
    Param('ramp_out_s', 1.0, 'arm_sdk weight ramp-out time, s', 1.0, 10.0),
    Param('fault_ramp_out_s', 0.04, 'weight ramp-out on stale state, s', 0.02, 1.0),
    Param('max_joint_velocity_rad_s', 1.5, 'upper-body joint speed limit at speed 1', 0.1, 5.0),
    Param('max_joint_acceleration_rad_s2', 4.0, 'joint acceleration limit, rad/s^2', 0.5, 40.0),
    Param('kp_arm', 60.0, 'arm joint stiffness sent with arm_sdk, N m/rad', 0.0, 500.0),
    Param('kd_arm', 1.5, 'arm joint damping, N m s/rad', 0.0, 50.0),
    Param('kp_waist', 200.0, 'waist joint stiffness, N m/rad', 0.0, 500.0),
    Param('kd_waist', 5.0, 'waist joint damping, N m s/rad', 0.0, 50.0),
    Param('max_walk_speed_m_s', 0.5, 'walking speed limit, m/s', 0.05, 0.5),
    Param('max_yaw_rate_rad_s', 1.0, 'turning rate limit, rad/s', 0.05, 1.0),
    Param('walk_position_tolerance_m', 0.03, 'base goal position tolerance, m', 0.005, 0.3),
    Param('walk_yaw_tolerance_rad', 0.05, 'base goal heading tolerance, rad', 0.005, 0.5),
    Param('reach_x_m', 0.32, 'hand working point: forward of the pelvis, m', 0.15, 0.6),
    Param('hand_y_m', 0.14, 'hand working point: to the side of the pelvis, m', 0.0, 0.4),
    Param('reach_tolerance_x_m', 0.08, 'comfortable reach: +- forward, m', 0.01, 0.3),
    Param('reach_tolerance_y_m', 0.12, 'comfortable reach: +- sideways, m', 0.01, 0.3),
    Param('min_point_height_m', 0.45, 'trace points lower than this are unreachable, m', 0.0, 2.0),
    Param('max_point_height_m', 1.2, 'trace points higher than this are unreachable, m', 0.1, 3.0),
    Param('max_walk_m', 5.0, 'trace points farther than this are rejected, m', 0.5, 50.0),
    Param('grasp_standoff_m', 0.02, 'grasp pose offset along the palm normal, m', 0.0, 0.1),
    Param('grasp_height_m', 0.03, 'grasp pose offset above the object centre, m', -0.1, 0.1),
    Param('approach_height_m', 0.10, 'approach/retreat height, m', 0.02, 0.4),
    Param('grip_closure', 0.6, 'Dex3 closure to grasp (0 open .. 1 fist)', 0.05, 1.0),
    Param('release_closure', 0.33, 'closure the hand opens to gently before letting go', 0.0, 1.0),
    Param('use_waist', True, 'let the IK move the waist joints'),
    Param('collision_margin_m', 0.02, 'arm/torso clearance kept by the IK, m', 0.0, 0.1),
    Param(
        'search_waist_yaws_deg',
        [60.0, -60.0],
        'looking for what is not in view: waist yaws tried first, deg (+ left)',
    ),
    Param(
        'search_base_yaws_deg',
        [120.0, 180.0, 240.0],
        'then base headings turned to in place, deg from the start (+ left, steps < 180)',
    ),
    Param('search_time_budget_s', 120.0, 'looking around gives up after this long, s', 5.0, 600.0),
]


def _stamp_s(stamp: Any) -> float:
    return float(stamp.sec) + float(stamp.nanosec) * 1e-9


def _pose_msg(t: np.ndarray) -> Pose:
    p = Pose()
    p.position.x, p.position.y, p.position.z = (float(v) for v in t[:3, 3])
    x, y, z, w = matrix_to_quaternion(t[:3, :3])
    p.orientation.x, p.orientation.y, p.orientation.z, p.orientation.w = (
        float(x),
        float(y),
        float(z),
        float(w),
    )
    return p


def unitree_config(p: dict[str, Any], domain: int) -> Any:
    """The unitree backend's settings from the node's parameters.

    Args:
        p: the declared parameters (name → value).
        domain: the DDS domain (``domain_id`` resolved).

    Returns:
        A :class:`~trace_executor.backends.unitree.UnitreeConfig`.
    """
    from trace_executor.backends.unitree import UnitreeConfig

    return UnitreeConfig(
        domain_id=domain,
        network_interface=p['network_interface'],
        loco_service=p['loco_service'],
        rate_hz=p['arm_rate_hz'],
        state_timeout_s=p['state_timeout_s'],
        ramp_in_s=p['ramp_in_s'],
        ramp_out_s=p['ramp_out_s'],
        fault_ramp_out_s=p['fault_ramp_out_s'],
        max_joint_velocity_rad_s=p['max_joint_velocity_rad_s'] * 1.2,
        kp_arm=p['kp_arm'],
        kd_arm=p['kd_arm'],
        kp_waist=p['kp_waist'],
        kd_waist=p['kd_waist'],
        walk=WalkLimits(
            max_speed_m_s=p['max_walk_speed_m_s'],
            max_yaw_rate_rad_s=p['max_yaw_rate_rad_s'],
            position_tolerance_m=p['walk_position_tolerance_m'],
            yaw_tolerance_rad=p['walk_yaw_tolerance_rad'],
        ),
        standing_pelvis_z_m=p['standing_pelvis_z_m'],
    )


def start_up_warning(missing: str, p: dict[str, Any]) -> str:
    """The executor's warning when the robot state is incomplete at start-up.

    Args:
        missing: what the backend says is missing (``UnitreeBackend.missing_state``).
        p: the declared parameters.

    Returns:
        One line: rt/lowstate comes from the robot, rt/odommodestate from its onboard state
        estimation service (which runs with the locomotion service), and what the
        ``standing_pelvis_z_m`` fallback does or would do.
    """
    z = p['standing_pelvis_z_m']
    if z > 0:
        fallback = (
            f'standing_pelvis_z_m is {z:g} m: arm-only goals plan with the standing pose at '
            'the odom origin until odometry arrives; walking is refused'
        )
    else:
        fallback = (
            'without odometry goals are refused; set standing_pelvis_z_m (the standing '
            "robot's pelvis height, about 0.79 m) to run arm-only goals without it"
        )
    return (
        'robot state incomplete after 10 s (rt/lowstate comes from the robot; '
        "rt/odommodestate from the robot's onboard state estimation service, which runs with "
        f'its locomotion service, not in debug or damping mode): {missing or "now complete"}. '
        + fallback
    )


class G1ExecutorNode(ExecutorNode):
    """G1 executor: planner + unitree backend + moving-camera scene watcher."""

    def __init__(self) -> None:
        # the head camera moves: its pose comes from camera_pose_source, not camera_to_base_*
        super().__init__('g1_executor', PARAMS, fixed_camera=False)
        p = self.p
        self.odom_frame = p['odom_frame']
        self.base_frame = self.odom_frame  # the G1 plans in odom (it walks)
        self.camera_frame = p['camera_frame']
        try:
            self.search_config = SearchConfig(
                waist_yaws_deg=tuple(float(v) for v in p['search_waist_yaws_deg']),
                base_yaws_deg=tuple(float(v) for v in p['search_base_yaws_deg']),
                time_budget_s=float(p['search_time_budget_s']),
            )
        except ValueError as exc:
            raise ValueError(f'search parameters: {exc}') from exc
        self.planner = G1Planner(
            G1PlannerConfig(
                odom_frame=self.odom_frame,
                reach=ReachRegion(
                    reach_x=p['reach_x_m'],
                    hand_y=p['hand_y_m'],
                    tolerance_back=p['reach_tolerance_x_m'],
                    tolerance_front=p['reach_tolerance_x_m'],
                    tolerance_y=p['reach_tolerance_y_m'],
                ),
                min_point_height_m=p['min_point_height_m'],
                max_point_height_m=p['max_point_height_m'],
                max_walk_m=p['max_walk_m'],
                grasp_standoff_m=p['grasp_standoff_m'],
                grasp_height_m=p['grasp_height_m'],
                approach_height_m=p['approach_height_m'],
                grip_closure=p['grip_closure'],
                release_closure=min(p['release_closure'], p['grip_closure'] * 0.9),
                use_waist=p['use_waist'],
                max_joint_velocity_rad_s=p['max_joint_velocity_rad_s'],
                max_joint_acceleration_rad_s2=p['max_joint_acceleration_rad_s2'],
                collision_margin_m=p['collision_margin_m'],
                sample_period_s=1.0 / p['arm_rate_hz'],
            ),
            log_rejection=self.get_logger().warning,
        )
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
        self.camera_poses.add(_stamp_s(msg.header.stamp), t)

    def _on_odom(self, msg: Odometry) -> None:
        p, q = msg.pose.pose.position, msg.pose.pose.orientation
        try:
            t = pose_from_xyz_quat([p.x, p.y, p.z], [q.x, q.y, q.z, q.w])
        except ValueError:
            return
        self.odom_poses.add(_stamp_s(msg.header.stamp), t)

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
            stamp = _stamp_s(msg.header.stamp)
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
        stamp = _stamp_s(msg.header.stamp)
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
        trace = SpatialTrace()
        trace.header.frame_id = self.odom_frame
        trace.header.stamp = stamp
        trace.points = [Point(x=float(a), y=float(b), z=float(c)) for a, b, c in plan.trace_base]
        n = len(plan.targets)
        for i, tg in enumerate(plan.targets):
            m = WholeBodyTarget()
            m.header.frame_id = self.odom_frame
            m.header.stamp = stamp
            m.step_index, m.step_count, m.phase = i, n, tg.phase
            if tg.base_goal is not None:
                m.has_base_goal = True
                m.base_goal = Pose2D(
                    x=float(tg.base_goal[0]),
                    y=float(tg.base_goal[1]),
                    theta=float(tg.base_goal[2]),
                )
            if tg.hand_pose is not None:
                if tg.side == 'left':
                    m.has_left_hand, m.left_hand = True, _pose_msg(tg.hand_pose)
                else:
                    m.has_right_hand, m.right_hand = True, _pose_msg(tg.hand_pose)
            if tg.side == 'left':
                m.left_grip = float(tg.grip)
            else:
                m.right_grip = float(tg.grip)
            m.joint_names = list(self.planner.joint_names)
            m.joint_positions = [float(v) for v in tg.joint_positions]
            m.trace = trace
            self.target_pub.publish(m)
        self.marker_pub.publish(self._markers(plan, stamp))
        self.get_logger().info(
            f'plan: {n} whole-body targets, {len(plan.walks)} walk(s), {plan.side} hand, '
            f'{plan.duration_s:.1f} s ({plan.note}); planned in {plan.timings_ms["total"]:.0f} ms'
        )

    def _markers(self, plan: G1Plan, stamp: Any) -> MarkerArray:
        path = Marker(type=Marker.LINE_STRIP, action=Marker.ADD, ns='g1_hand_path', id=0)
        path.header.frame_id = self.odom_frame
        path.header.stamp = stamp
        path.scale.x = 0.006
        path.color = ColorRGBA(r=0.1, g=0.6, b=1.0, a=1.0)
        path.pose.orientation.w = 1.0
        path.points = [
            Point(x=float(a), y=float(b), z=float(c)) for a, b, c in plan.tool_path.positions
        ]
        pts = Marker(type=Marker.SPHERE_LIST, action=Marker.ADD, ns='g1_trace', id=1)
        pts.header = path.header
        pts.scale.x = pts.scale.y = pts.scale.z = 0.02
        pts.color = ColorRGBA(r=1.0, g=0.8, b=0.1, a=1.0)
        pts.pose.orientation.w = 1.0
        pts.points = [Point(x=float(a), y=float(b), z=float(c)) for a, b, c in plan.trace_base]
        out = [path, pts]
        for i, w in enumerate(plan.walks):
            arrow = Marker(type=Marker.ARROW, action=Marker.ADD, ns='g1_base_goals', id=10 + i)
            arrow.header = path.header
            arrow.scale.x, arrow.scale.y, arrow.scale.z = 0.3, 0.05, 0.05
            arrow.color = ColorRGBA(r=0.2, g=1.0, b=0.3, a=1.0)
            arrow.pose = _pose_msg(stance_matrix(w.goal[0], w.goal[1], 0.02, w.goal[2]))
            out.append(arrow)
        return MarkerArray(markers=out)

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
