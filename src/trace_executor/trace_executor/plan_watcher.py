"""The scene watcher of a running plan (ROS-free; the nodes feed it depth frames).

Each frame is compared with the reference taken when the plan started, in the regions the plan
needs, with the robot and what it holds masked out.
"""

from __future__ import annotations

from collections.abc import Callable
import threading
import time
from typing import Any

import numpy as np

from trace_executor.body_mask import BodyMaskHistory, MaskInput, pose_difference
from trace_executor.execution import SceneEvent
from trace_executor.scene_monitor import (
    MonitorConfig,
    Region,
    SceneChange,
    SceneMonitor,
    plan_regions,
)


class PlanSceneWatcher:
    """A :class:`~trace_executor.execution.SceneWatcher` on depth frames with camera poses.

    Regions (object at the trace start until grasped, destination, path corridor) are spheres
    in the base frame; each depth frame comes with the camera pose at its stamp (a fixed camera:
    always the same pose). The reference is the newest frame when a plan is armed. A frame whose
    camera pose differs a little from the reference's (the waist turns during a reach) is
    compared with the reference re-projected to its pose (:meth:`SceneMonitor.seen_from`); one
    from farther away (a walk) is not compared. Once the camera has been still for
    ``settle_frames`` frames at a new pose (and nothing changed where it could be compared),
    that pose gets a new reference.

    The robot is masked with ``robot_points`` (its links, gripper or hands) and, from the grasp
    (:meth:`arm` with ``holding``) to the release, the object it holds (see
    :class:`BodyMaskHistory`), in the reference and in every compared frame; changes where only
    the robot or what it holds moved are neither scene changes nor obstacles.

    ROS-free: the node feeds frames (:meth:`on_frame`) and intrinsics.

    Args:
        config: scene monitor thresholds.
        robot_points: callable giving the robot's mask now (see :data:`MaskInput`), or None.
        region_radius_m: radius of the object and destination regions.
        corridor_radius_m: radius of the path corridor spheres.
        clear_radius_m: corridor spheres this close to the start/end are left out.
        same_pose_m: camera poses closer than this (and ``same_pose_rad``) are the same.
        same_pose_rad: rotation tolerance of "the same pose".
        settle_frames: frames at an unchanged new pose before it gets a new reference.
        held_object_radius_m: radius of the sphere masked around a held object.
        mask_latency_s: how late a depth frame may arrive after it was taken (the robot's masks
            of that long before a frame's arrival are applied to it); a frame that comes with
            its age (:meth:`on_frame`) is masked from when it was taken, however late.
        max_frame_age_s: frames older than this on arrival (a starved camera or subscriber)
            are not compared: the robot has moved on since (s).
        max_reproject_m: a frame from a camera pose this close to the reference's (and
            ``max_reproject_rad``) is compared with the reference re-projected to its pose
            (:meth:`SceneMonitor.seen_from`); farther ones (a walk) are skipped.
        max_reproject_rad: rotation limit of that comparison.
        log: ``log(message)`` for warnings.
        clock: seconds, monotonic (simulated time in tests).
    """

    def __init__(
        self,
        config: MonitorConfig,
        robot_points: Callable[[], MaskInput],
        region_radius_m: float = 0.05,
        corridor_radius_m: float = 0.04,
        clear_radius_m: float = 0.08,
        same_pose_m: float = 0.001,
        same_pose_rad: float = 0.001,
        settle_frames: int = 2,
        held_object_radius_m: float = 0.11,
        mask_latency_s: float = 0.3,
        max_reproject_m: float = 0.15,
        max_reproject_rad: float = 0.3,
        max_frame_age_s: float = 2.0,
        log: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
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
        self.clock = clock
        self.masks = BodyMaskHistory(
            lambda: self.robot_points(),
            config.robot_mask_radius_m,
            held_radius_m=held_object_radius_m,
            window_s=mask_latency_s,
            clock=clock,
        )
        self.max_frame_age_s = max_frame_age_s
        self._clock_warned = False
        self.masks.keep_s = max(mask_latency_s, max_frame_age_s) + 0.1
        self._lock = threading.Lock()
        # depth, pose, seq, arrival time, time taken (the watcher's clock)
        self._frame: tuple[np.ndarray, np.ndarray, int, float, float] | None = None
        self._seq = 0
        self._checked = 0
        self._K: np.ndarray | None = None
        self._monitor: SceneMonitor | None = None
        self._regions: list[Region] = []
        self._ref_pose: np.ndarray | None = None
        self._candidate: tuple[np.ndarray, int] | None = None
        self._moved: tuple[np.ndarray, SceneMonitor] | None = None
        self.max_reproject_m = max_reproject_m
        self.max_reproject_rad = max_reproject_rad
        self._armed = False
        #: the last change seen (None: none since :meth:`arm`)
        self.last_change: SceneChange | None = None
        self.stats = {
            'compared': 0,
            'reprojected': 0,
            'skipped_moving': 0,
            'references': 0,
            'changes': 0,
            'skipped_stale': 0,
        }

    # --- input ---------------------------------------------------------------------------
    def set_intrinsics(self, k: np.ndarray) -> None:
        """The depth image's 3×3 intrinsics."""
        self._K = np.asarray(k, dtype=float).reshape(3, 3)

    def on_frame(
        self, depth_m: np.ndarray, t_base_camera: np.ndarray | None, age_s: float | None = None
    ) -> None:
        """A new depth frame (metres) and the camera pose at its stamp (None: unknown).

        ``age_s``: how long ago the frame was taken (arrival time minus its stamp, on the
        caller's clock); None when unknown (then ``mask_latency_s`` is assumed).
        """
        if t_base_camera is None:
            return
        now = self.clock()
        if age_s is not None and not -0.5 <= age_s <= 30.0:
            # Not a late frame but another clock (sim time against wall time, no time sync):
            # mask by arrival time, as without stamps.
            if not self._clock_warned:
                self._clock_warned = True
                self.log(
                    f'scene monitor: a depth frame is stamped {age_s:+.1f} s from now: camera '
                    'and node clocks disagree (use_sim_time, time sync); masking the robot by '
                    'arrival time'
                )
            age_s = None
        age = self.masks.window_s if age_s is None else max(float(age_s), 0.0)
        with self._lock:
            self._seq += 1
            self._frame = (
                depth_m,
                np.asarray(t_base_camera, dtype=float),
                self._seq,
                now,
                now - age,
            )

    @property
    def has_frame(self) -> bool:
        """Whether a depth frame and intrinsics have arrived."""
        return self._frame is not None and self._K is not None

    # --- SceneWatcher --------------------------------------------------------------------
    def arm(self, plan: Any, holding: bool) -> None:
        """Regions for ``plan`` and a reference from the newest frame.

        ``holding`` right after a grasp (the previous arm was not holding) records the held
        object at the trace start, carried with the hand from now on; not holding drops it.
        """
        self.masks.sample(force=True)
        if holding and not self.masks.holding:
            self.masks.grasp(np.asarray(plan.trace_base, dtype=float)[0])
        elif not holding:
            self.masks.release()
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
        self.last_change = None
        if frame is None or self._K is None:
            self.log('scene monitor: no depth frame / camera_info yet: replanning is off')
            self._armed = False
            return
        self._armed = True
        self._reference(frame)

    def _mask_for(self, arrived: float, taken: float) -> np.ndarray:
        """Every pose the robot had from (a little before) the frame was taken until now."""
        since = min(arrived - self.masks.window_s, taken - self.masks.min_period_s)
        return self.masks.spheres_since(since)

    def _reference(self, frame: tuple[np.ndarray, np.ndarray, int, float, float]) -> None:
        depth, pose, seq, arrived, taken = frame
        h, w = depth.shape
        assert self._K is not None
        if self._monitor is None or (self._monitor.width, self._monitor.height) != (w, h):
            self._monitor = SceneMonitor(self._K, pose, (w, h), self.config)
        else:
            self._monitor.set_camera(pose)
        self._monitor.set_regions(self._regions)
        self._monitor.set_reference(depth, self._mask_for(arrived, taken))
        self._moved = None
        self._ref_pose = pose
        self._checked = seq
        self.stats['references'] += 1

    def _same(self, a: np.ndarray, b: np.ndarray) -> bool:
        dt, dr = pose_difference(a, b)
        return dt <= self.same_pose_m and dr <= self.same_pose_rad

    def _moved_view(self, pose: np.ndarray) -> SceneMonitor | None:
        """The reference seen from ``pose`` (cached per pose), or None when too far to tell."""
        assert self._monitor is not None and self._ref_pose is not None
        dt, dr = pose_difference(pose, self._ref_pose)
        if dt > self.max_reproject_m or dr > self.max_reproject_rad:
            return None
        if self._moved is None or not self._same(pose, self._moved[0]):
            self._moved = (pose, self._monitor.seen_from(pose))
        return self._moved[1]

    def poll(self) -> SceneEvent | None:
        """Check the newest frame once; what changed (reason, where something appeared)."""
        if not self._armed or self._monitor is None or self._ref_pose is None:
            return None
        self.masks.sample()
        with self._lock:
            frame = self._frame
        if frame is None or frame[2] == self._checked:
            return None
        depth, pose, seq, arrived, taken = frame
        self._checked = seq
        if arrived - taken > self.max_frame_age_s:
            self.stats['skipped_stale'] += 1  # the robot has moved on since: nothing to tell
            return None
        monitor: SceneMonitor | None = self._monitor
        if not self._same(pose, self._ref_pose):
            # The camera moved (waist, base): compare with the reference re-projected to the
            # new pose while the move is small; once still at a new pose, re-reference there.
            monitor = self._moved_view(pose)
            if self._candidate is not None and self._same(pose, self._candidate[0]):
                self._candidate = (pose, self._candidate[1] + 1)
            else:
                self._candidate = (pose, 1)
            if monitor is None:
                self.stats['skipped_moving'] += 1
                if self._candidate[1] >= self.settle_frames:
                    self._candidate = None
                    self._reference(frame)
                return None
            self.stats['reprojected'] += 1
        else:
            self._candidate = None
        self.stats['compared'] += 1
        change = monitor.check(depth, self._mask_for(arrived, taken))
        if change is None:
            if self._candidate is not None and self._candidate[1] >= self.settle_frames:
                self._candidate = None
                self._reference(frame)  # nothing changed: watch from here on
            return None
        self.stats['changes'] += 1
        self.last_change = change
        appeared = change.median_shift_m < 0 and len(change.appeared_points)
        return SceneEvent(change.reason, change.appeared_points if appeared else np.zeros((0, 3)))

    def disarm(self) -> None:
        """Stop watching until the next :meth:`arm`."""
        self._armed = False
