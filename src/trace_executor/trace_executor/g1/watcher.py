"""Scene-change watching for a camera that moves with the robot (the G1's head camera).

Wraps :class:`~trace_executor.scene_monitor.SceneMonitor` (regions and thresholds as on the
UR5) with the rule *compare only frames taken from the same camera pose*:

- the regions (object at the trace start until grasped, destination, path corridor) are
  spheres in odom; each depth frame comes with the camera pose at its stamp;
- the reference frame is taken when a plan is armed, with the camera pose of that frame
  (:meth:`SceneMonitor.set_camera`); a frame whose camera pose differs from the reference's
  (the robot walks, or the waist turns during a reach) is not compared;
- when the camera has been still again for ``settle_frames`` frames at a new pose (after a walk
  or a waist motion), that pose gets a new reference and watching resumes.

So changes are caught whenever the head is still; what changed *while* the robot walked is
caught by looking again after every walk (:data:`trace_executor.execution.LOOK_AGAIN`). The
robot's own arms are masked with points along their links.

ROS-free: the node feeds frames (:meth:`StanceSceneWatcher.on_frame`).
"""

from __future__ import annotations

from collections.abc import Callable
import threading
from typing import Any

import numpy as np

from ..scene_monitor import MonitorConfig, Region, SceneMonitor, plan_regions
from .camera import pose_difference


class StanceSceneWatcher:
    """A :class:`~trace_executor.execution.SceneWatcher` for a moving camera.

    Args:
        config: scene monitor thresholds.
        robot_points: callable giving (M, 3) odom points along the robot's arms now (or None).
        region_radius_m: radius of the object and destination regions.
        corridor_radius_m: radius of the path corridor spheres.
        clear_radius_m: corridor spheres this close to the start/end are left out.
        same_pose_m: camera poses closer than this (and ``same_pose_rad``) are the same.
        same_pose_rad: rotation tolerance of "the same pose".
        settle_frames: frames at an unchanged new pose before it gets a new reference.
        log: ``log(message)`` for warnings.
    """

    def __init__(
        self,
        config: MonitorConfig,
        robot_points: Callable[[], np.ndarray | None],
        region_radius_m: float = 0.05,
        corridor_radius_m: float = 0.04,
        clear_radius_m: float = 0.08,
        same_pose_m: float = 0.001,
        same_pose_rad: float = 0.001,
        settle_frames: int = 2,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.config = config
        self.robot_points = robot_points
        self.region_radius_m = region_radius_m
        self.corridor_radius_m = corridor_radius_m
        self.clear_radius_m = clear_radius_m
        self.same_pose_m = same_pose_m
        self.same_pose_rad = same_pose_rad
        self.settle_frames = settle_frames
        self.log = log or (lambda m: None)
        self._lock = threading.Lock()
        self._frame: tuple[np.ndarray, np.ndarray, int] | None = None  # depth, pose, seq
        self._seq = 0
        self._checked = 0
        self._K: np.ndarray | None = None
        self._monitor: SceneMonitor | None = None
        self._regions: list[Region] = []
        self._ref_pose: np.ndarray | None = None
        self._candidate: tuple[np.ndarray, int] | None = None
        self._armed = False
        #: odom points of the last change where something appeared (candidate obstacle)
        self.obstacle_points = np.zeros((0, 3))
        self.stats = {'compared': 0, 'skipped_moving': 0, 'references': 0}

    # --- input ---------------------------------------------------------------------------
    def set_intrinsics(self, k: np.ndarray) -> None:
        """The depth image's 3×3 intrinsics."""
        self._K = np.asarray(k, dtype=float).reshape(3, 3)

    def on_frame(self, depth_m: np.ndarray, t_odom_camera: np.ndarray | None) -> None:
        """A new depth frame (metres) and the camera pose at its stamp (None: unknown)."""
        if t_odom_camera is None:
            return
        with self._lock:
            self._seq += 1
            self._frame = (depth_m, np.asarray(t_odom_camera, dtype=float), self._seq)

    # --- SceneWatcher --------------------------------------------------------------------
    def arm(self, plan: Any, holding: bool) -> None:
        """Regions for ``plan`` (odom) and a reference from the newest frame."""
        regions = plan_regions(
            plan.trace_base,
            plan.mode,
            holding,
            self.region_radius_m,
            self.corridor_radius_m,
            self.clear_radius_m,
        )
        with self._lock:
            frame = self._frame
        self._regions = regions
        self._monitor = None
        self._ref_pose = None
        self._candidate = None
        if frame is None or self._K is None:
            self.log('scene monitor: no depth frame / camera_info yet: replanning is off')
            self._armed = False
            return
        self._armed = True
        self._reference(frame)

    def _reference(self, frame: tuple[np.ndarray, np.ndarray, int]) -> None:
        depth, pose, seq = frame
        h, w = depth.shape
        assert self._K is not None
        if self._monitor is None or (self._monitor.width, self._monitor.height) != (w, h):
            self._monitor = SceneMonitor(self._K, pose, (w, h), self.config)
        else:
            self._monitor.set_camera(pose)
        self._monitor.set_regions(self._regions)
        self._monitor.set_reference(depth, self.robot_points())
        self._ref_pose = pose
        self._checked = seq
        self.stats['references'] += 1

    def _same(self, a: np.ndarray, b: np.ndarray) -> bool:
        dt, dr = pose_difference(a, b)
        return dt <= self.same_pose_m and dr <= self.same_pose_rad

    def poll(self) -> str | None:
        """Check the newest frame once; a reason when the scene changed."""
        if not self._armed or self._monitor is None or self._ref_pose is None:
            return None
        with self._lock:
            frame = self._frame
        if frame is None or frame[2] == self._checked:
            return None
        depth, pose, seq = frame
        self._checked = seq
        if not self._same(pose, self._ref_pose):
            self.stats['skipped_moving'] += 1
            # The camera moved: wait until it is still at a new pose, then re-reference.
            if self._candidate is not None and self._same(pose, self._candidate[0]):
                n = self._candidate[1] + 1
                self._candidate = (pose, n)
                if n >= self.settle_frames:
                    self._candidate = None
                    self._reference(frame)
            else:
                self._candidate = (pose, 1)
            return None
        self._candidate = None
        self.stats['compared'] += 1
        change = self._monitor.check(depth, self.robot_points())
        if change is None:
            return None
        if change.median_shift_m < 0 and len(change.appeared_points):
            self.obstacle_points = change.appeared_points
        return change.reason

    def disarm(self) -> None:
        """Stop watching until the next :meth:`arm`."""
        self._armed = False
