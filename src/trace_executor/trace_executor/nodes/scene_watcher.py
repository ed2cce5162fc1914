"""The ROS side of the scene monitor: depth + camera_info subscriptions → a SceneWatcher.

Implements :class:`trace_executor.execution.SceneWatcher` for a robot whose camera is fixed in
the base frame (the UR5 cell): the reference frame is taken when a plan is armed; regions are
the object at the trace start (until grasped), the destination, and the corridor along the
path; the robot is masked with points sampled along its links from the current joint state.
"""

from __future__ import annotations

from collections.abc import Callable
import threading
from typing import Any

import numpy as np
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image

from robotracer_ros.images import depth_scale_for, depth_to_metres, image_to_numpy
from trace_executor.scene_monitor import MonitorConfig, SceneMonitor, plan_regions


def densify(chain: np.ndarray, step_m: float = 0.05) -> np.ndarray:
    """Points every ``step_m`` along a polyline (the robot's link chain)."""
    out = [chain[0]]
    for a, b in zip(chain[:-1], chain[1:], strict=True):
        n = max(1, int(np.ceil(np.linalg.norm(b - a) / step_m)))
        out += [a + (b - a) * (i / n) for i in range(1, n + 1)]
    return np.array(out)


class DepthSceneWatcher:
    """Watch the depth stream for changes that invalidate the running plan."""

    def __init__(
        self,
        node: Node,
        *,
        depth_topic: str,
        info_topic: str,
        T_base_cam: np.ndarray,
        config: MonitorConfig,
        robot_points: Callable[[], np.ndarray | None],
        reliable: bool = True,
        region_radius_m: float = 0.05,
        corridor_radius_m: float = 0.04,
        clear_radius_m: float = 0.08,
    ) -> None:
        self.node = node
        self.T_base_cam = T_base_cam
        self.config = config
        self.robot_points = robot_points
        self.region_radius_m = region_radius_m
        self.corridor_radius_m = corridor_radius_m
        self.clear_radius_m = clear_radius_m
        self._lock = threading.Lock()
        self._depth: np.ndarray | None = None
        self._seq = 0
        self._checked = 0
        self._K: np.ndarray | None = None
        self._monitor: SceneMonitor | None = None
        self._armed = False
        #: base-frame points of the last change where something appeared (candidate obstacle)
        self.obstacle_points = np.zeros((0, 3))
        qos = QoSProfile(
            depth=2,
            reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT,
        )
        group = MutuallyExclusiveCallbackGroup()
        node.create_subscription(Image, depth_topic, self._on_depth, qos, callback_group=group)
        node.create_subscription(CameraInfo, info_topic, self._on_info, qos, callback_group=group)

    def _on_info(self, msg: CameraInfo) -> None:
        self._K = np.array(msg.k, dtype=float).reshape(3, 3)

    def _on_depth(self, msg: Image) -> None:
        raw = image_to_numpy(
            msg.encoding, msg.height, msg.width, msg.step, msg.data, msg.is_bigendian
        )
        d = depth_to_metres(raw, depth_scale_for(msg.encoding))
        with self._lock:
            self._depth = d
            self._seq += 1

    def _latest(self) -> tuple[np.ndarray | None, int]:
        with self._lock:
            return self._depth, self._seq

    def arm(self, plan: Any, holding: bool) -> None:
        """New reference (robot at rest) and regions for ``plan``."""
        depth, seq = self._latest()
        if depth is None or self._K is None:
            self.node.get_logger().warn(
                'scene monitor: no depth frame / camera_info yet: replanning is off for this plan'
            )
            self._armed = False
            return
        h, w = depth.shape
        if self._monitor is None or (self._monitor.width, self._monitor.height) != (w, h):
            self._monitor = SceneMonitor(self._K, self.T_base_cam, (w, h), self.config)
        regions = plan_regions(
            plan.trace_base,
            plan.mode,
            holding,
            self.region_radius_m,
            self.corridor_radius_m,
            self.clear_radius_m,
        )
        self._monitor.set_regions(regions)
        self._monitor.set_reference(depth, self.robot_points())
        self._checked = seq
        self._armed = True

    def poll(self) -> str | None:
        """Check the newest frame (once); a reason when the scene changed."""
        if not self._armed or self._monitor is None:
            return None
        depth, seq = self._latest()
        if depth is None or seq == self._checked:
            return None
        self._checked = seq
        change = self._monitor.check(depth, self.robot_points())
        if change is None:
            return None
        if change.median_shift_m < 0 and len(change.appeared_points):
            self.obstacle_points = change.appeared_points
        return change.reason

    def disarm(self) -> None:
        """Stop watching until the next :meth:`arm`."""
        self._armed = False
