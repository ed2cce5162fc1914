"""The ROS side of the scene monitor: depth + camera_info subscriptions → a SceneWatcher.

Implements :class:`trace_executor.execution.SceneWatcher` for a robot whose camera is fixed in
the base frame (the UR5 cell). All the watching is
:class:`~trace_executor.plan_watcher.PlanSceneWatcher` (ROS-free, shared with the G1): the
reference frame is taken when a plan is armed; regions are the object at the trace start (until
grasped), the destination, and the corridor along the path; the robot, its gripper and the
object it holds are masked (``robot_points``: :meth:`trace_executor.ur5.collision.Ur5BodyMask.at`
for the current joint state). This module only converts messages.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image

from robotracer_ros.images import depth_scale_for, depth_to_metres, image_to_numpy
from trace_executor.body_mask import MaskInput
from trace_executor.execution import SceneEvent
from trace_executor.plan_watcher import PlanSceneWatcher
from trace_executor.scene_monitor import MonitorConfig


def densify(chain: np.ndarray, step_m: float = 0.05) -> np.ndarray:
    """Points every ``step_m`` along a polyline (the robot's link chain)."""
    out = [chain[0]]
    for a, b in zip(chain[:-1], chain[1:], strict=True):
        n = max(1, int(np.ceil(np.linalg.norm(b - a) / step_m)))
        out += [a + (b - a) * (i / n) for i in range(1, n + 1)]
    return np.array(out)


class DepthSceneWatcher:
    """Watch the depth stream for changes that invalidate the running plan.

    Args:
        node: the node that owns the subscriptions.
        depth_topic: aligned depth image topic.
        info_topic: its camera_info topic.
        T_base_cam: (4, 4) pose of the camera optical frame in the base frame, or a function
            that gives it for each frame (tf, else the parameters; None: frame dropped).
        config: scene monitor thresholds.
        robot_points: the robot's mask now (see :data:`~trace_executor.body_mask.MaskInput`).
        reliable: subscribe with reliable QoS.
        region_radius_m: radius of the object and destination regions.
        corridor_radius_m: radius of the path corridor spheres.
        clear_radius_m: corridor spheres this close to the start/end are left out.
        held_object_radius_m: radius of the sphere masked around a held object.
        mask_latency_s: how late a depth frame may arrive after it was taken.
    """

    def __init__(
        self,
        node: Node,
        *,
        depth_topic: str,
        info_topic: str,
        T_base_cam: np.ndarray | Callable[[], np.ndarray | None],
        config: MonitorConfig,
        robot_points: Callable[[], MaskInput],
        reliable: bool = True,
        region_radius_m: float = 0.05,
        corridor_radius_m: float = 0.04,
        clear_radius_m: float = 0.08,
        held_object_radius_m: float = 0.11,
        mask_latency_s: float = 0.3,
    ) -> None:
        self.node = node
        if callable(T_base_cam):
            self.camera_pose = T_base_cam
        else:
            fixed = np.asarray(T_base_cam, dtype=float)
            self.camera_pose = lambda: fixed
        self.core = PlanSceneWatcher(
            config,
            robot_points,
            region_radius_m=region_radius_m,
            corridor_radius_m=corridor_radius_m,
            clear_radius_m=clear_radius_m,
            held_object_radius_m=held_object_radius_m,
            mask_latency_s=mask_latency_s,
            log=lambda m: node.get_logger().warn(m),
        )
        qos = QoSProfile(
            depth=2,
            reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT,
        )
        group = MutuallyExclusiveCallbackGroup()
        node.create_subscription(Image, depth_topic, self._on_depth, qos, callback_group=group)
        node.create_subscription(CameraInfo, info_topic, self._on_info, qos, callback_group=group)

    def _on_info(self, msg: CameraInfo) -> None:
        self.core.set_intrinsics(np.array(msg.k, dtype=float).reshape(3, 3))

    def _on_depth(self, msg: Image) -> None:
        T_base_cam = self.camera_pose()
        if T_base_cam is None:
            return
        raw = image_to_numpy(
            msg.encoding, msg.height, msg.width, msg.step, msg.data, msg.is_bigendian
        )
        stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        age = self.node.get_clock().now().nanoseconds * 1e-9 - stamp if stamp > 0 else None
        self.core.on_frame(depth_to_metres(raw, depth_scale_for(msg.encoding)), T_base_cam, age)

    def arm(self, plan: Any, holding: bool) -> None:
        """New reference (robot at rest) and regions for ``plan``."""
        self.core.arm(plan, holding)

    def poll(self) -> SceneEvent | None:
        """Check the newest frame (once); what changed, if anything."""
        return self.core.poll()

    def disarm(self) -> None:
        """Stop watching until the next :meth:`arm`."""
        self.core.disarm()
